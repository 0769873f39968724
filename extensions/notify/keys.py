"""One notification per job and event, whoever reports it first: Slurm's MailProg or the meter."""


def job_key(cluster: str, job_id: str, event: str) -> str:
    return f"job:{cluster}:{job_id}:{event}"

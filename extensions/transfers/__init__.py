"""Copy a folder from one cluster's home to another's, as the person, with progress."""

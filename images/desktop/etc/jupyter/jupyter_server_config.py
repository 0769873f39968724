# corehour's desktop image (docs/desktop.md).
import os
import sys

# The session is corehour's (etc/corehour/xstartup), not whatever ~/.vnc/xstartup a person's
# home happens to hold.
os.environ.setdefault(
    "JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP", os.path.join(sys.prefix, "etc", "corehour", "xstartup")
)

# The desktop's websocket as jupyter-remote-desktop-proxy defines it, but without counting its
# frames as activity: a clock on the panel would keep a forgotten desktop alive, and billed,
# for ever.  voila_apps/kit/desktop_activity.py counts the desktop's keyboard and mouse
# instead.  Defined here it comes before the package's own entry, which it replaces (the
# first route wins); the package's entry keeps JupyterLab's launcher tile.
try:
    from jupyter_remote_desktop_proxy.setup_websockify import setup_websockify

    desktop = setup_websockify()
except (ImportError, RuntimeError):
    desktop = None  # no vncserver on this node: desktop/ then says it cannot connect
if desktop is not None:
    desktop.update(update_last_activity=False, launcher_entry={"enabled": False})
    c.ServerProxy.servers = {"desktop-websockify": desktop}  # noqa: F821 (Jupyter's config object)

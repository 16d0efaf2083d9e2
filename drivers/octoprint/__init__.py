"""OctoPrint driver: a typed REST client, the push socket, and the driver that lets OctoPrint stream."""

from drivers.octoprint.driver import OctoPrintDriver

__all__ = ["OctoPrintDriver"]

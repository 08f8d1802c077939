"""Errors that stop a tick until a person changes something in the cluster.

Retrying such an error every few seconds fixes nothing and hides it in the
operator's log. Adapters raise a ``CannotProceedError`` instead; handlers
show its message in status (a ``Stalled`` condition) and as a Warning event
once, then look again slowly.
"""

from __future__ import annotations


class CannotProceedError(RuntimeError):
    """The cluster is missing something or refuses an object; a person must act.

    ``reason`` is the CamelCase word the condition and the event carry.
    """

    reason = "CannotProceed"

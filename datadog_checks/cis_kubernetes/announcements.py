"""When the node's compliance status is announced: on every change, and an unchanged failure again every
`event_resend_interval` seconds, whatever the Agent's persistent cache holds and however the clock steps.

Within one Agent process, time since an announcement is counted on the monotonic clock, so a wall-clock step in either
direction neither silences nor repeats a reminder. Across Agent restarts only the wall-clock time in the persistent
cache is known: a time in the future (the clock was set back since) counts from now.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

ANNOUNCED_STATUSES = ('passed', 'failed', 'not_verified')  # reporting.compliance_status


@dataclass(frozen=True)
class Announcement:
    status: str  # passed | failed | not_verified
    at: float  # wall-clock time, kept in the persistent cache across Agent restarts
    since: float  # the monotonic time it counts from, in this Agent process


def announcement_from_cache(raw: object, now: float, monotonic: float) -> Announcement | None:
    """What the persistent cache says was announced last; None ("nothing announced") for anything malformed."""
    try:
        state = json.loads(raw) if isinstance(raw, str | bytes) else None
    except ValueError:
        return None
    if not isinstance(state, dict):
        return None
    status, at = state.get('status'), state.get('at')
    if status not in ANNOUNCED_STATUSES or isinstance(at, bool) or not isinstance(at, int | float):
        return None
    if not math.isfinite(at):
        return None
    elapsed = now - at if at <= now else 0.0  # announced "in the future": the clock was set back since
    return Announcement(status, float(at), monotonic - elapsed)


def announcement_to_cache(announcement: Announcement) -> str:
    return json.dumps({'status': announcement.status, 'at': announcement.at})


def announcement_due(previous: Announcement | None, status: str, monotonic: float, resend_interval: int) -> bool:
    if previous is None or previous.status != status:
        return True
    return status == 'failed' and resend_interval > 0 and monotonic - previous.since >= resend_interval

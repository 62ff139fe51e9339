"""Per-store format policy: which formats a store accepts and what clones require.

The verdict says what an image is and whether it is safe; the policy says
whether *this store* takes it. A rejection is an :class:`~imagestore.errors.UnsafeImage`
carrying every reason, so nothing of the image is kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ConfigError, UnsafeImage
from .verdict import DEFAULT_ALLOWED_FORMATS, KNOWN_FORMATS, FormatVerdict

__all__ = ["FormatPolicy"]


def _normalise(formats: Iterable[str] | None) -> frozenset[str]:
    if formats is None:
        return DEFAULT_ALLOWED_FORMATS
    if isinstance(formats, str):
        formats = [formats]
    names = frozenset(str(name).strip().lower() for name in formats)
    unknown = sorted(names - KNOWN_FORMATS)
    if unknown:
        raise ConfigError(
            f"unknown disk format(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_FORMATS))}",
            key="allowed_formats",
        )
    return names


@dataclass(frozen=True)
class FormatPolicy:
    """What a store accepts: ``allowed_formats`` (None = :data:`DEFAULT_ALLOWED_FORMATS`,
    every known format but QED) and whether copy-on-write clones need a raw source
    (``cow_requires_raw``).
    """

    allowed_formats: frozenset[str] = DEFAULT_ALLOWED_FORMATS
    cow_requires_raw: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_formats", _normalise(self.allowed_formats))

    def check(
        self,
        verdict: FormatVerdict,
        *,
        declared: str | None = None,
        store: str | None = None,
        image: str | None = None,
    ) -> None:
        """Raise :class:`UnsafeImage` unless the store may keep an image with ``verdict``.

        Rejects unsafe verdicts (their reasons are carried over), formats not in
        ``allowed_formats``, and a ``declared`` format (case-insensitive) that is
        unknown or differs from the detected one. A partitioned raw disk is
        still ``raw``, so declaring "raw" accepts it.
        """
        detected = verdict.format
        reasons: list[str] = []
        if not verdict.safe:
            reasons.extend(verdict.reasons or ("the image failed the format safety checks",))
        if detected is None:
            reasons.append("the image format could not be determined")
        elif detected not in self.allowed_formats:
            allowed = ", ".join(sorted(self.allowed_formats)) or "none"
            reasons.append(f"format {detected!r} is not allowed in this store (allowed: {allowed})")
        if declared is not None:
            name = declared.strip().lower()
            if name not in KNOWN_FORMATS:
                reasons.append(f"declared format {declared!r} is not a known disk format "
                               f"(known: {', '.join(sorted(KNOWN_FORMATS))})")
            elif detected is not None and name != detected:
                reasons.append(f"declared format {name!r} does not match the detected "
                               f"format {detected!r}")
        if reasons:
            raise UnsafeImage("image rejected by the format policy", reasons=reasons,
                              format=detected, store=store, image=image)

    def allows(self, fmt: str) -> bool:
        """Whether a (declared) format name is in ``allowed_formats``."""
        return fmt.strip().lower() in self.allowed_formats

    def check_clone(
        self, fmt: str | None, *, cow: bool = True, accept_unknown: bool = False, store: str | None = None,
        image: str | None = None,
    ) -> None:
        """Raise :class:`UnsafeImage` if a native clone of a ``fmt`` image into this store is refused.

        Native clones (``cow``, ``server_copy``) bypass ``add``, so the store's
        ``allowed_formats`` is checked here; an image of unknown format (added
        without inspection) passes only with ``accept_unknown`` (a target that does
        not inspect either); ``cow_requires_raw`` applies to cow only.
        """
        name = (fmt or "").lower()
        reasons = []
        if fmt is None and accept_unknown:
            pass
        elif name not in self.allowed_formats:
            allowed = ", ".join(sorted(self.allowed_formats)) or "none"
            reasons.append(f"format {fmt or 'unknown'!r} is not allowed in this store (allowed: {allowed})")
        if cow and self.cow_requires_raw and name != "raw":
            reasons.append(f"this store clones raw images only; the image is {fmt or 'of unknown format'}")
        if reasons:
            raise UnsafeImage("clone refused", reasons=reasons, format=fmt, store=store, image=image)

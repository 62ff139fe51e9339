"""Image-format inspection: detect, size and judge a disk image while it streams.

:class:`StreamInspector` is fed the chunks the store is writing (one pass, no
second read, a few MiB of memory whatever the size) and returns a
:class:`FormatVerdict`: the glance ``disk_format`` name, the virtual size, the
partition table of raw disks, and whether the image is safe to hand to a
hypervisor, with reasons. :func:`inspect` does the same for a file.
:class:`FormatPolicy` turns a verdict into a store's decision (allowed formats,
declared format must match, raw-only copy-on-write clones) and raises
:class:`~imagestore.errors.UnsafeImage`.

The rule is: **when in doubt, unsafe**. An image is unsafe when it can make a
consumer read another file (qcow2/QED backing files, qcow2 external data files,
VMDK descriptors and parents, VHD/VHDX/VDI differencing disks), when its
headers are truncated, inconsistent or use features we do not know, when its
tables point past the end of the file, when its virtual size is absurd, or
when it is a polyglot -- valid as two formats that different consumers would
read differently. One module per format holds that format's rules.

Polyglot decisions (signatures sit at offset 0, byte 64 for VDI, 32 KiB for
ISO, 510/512 for MBR/GPT, the last 512 bytes for a fixed VHD). The reported
format is the one qemu's probing picks (the offset-0 header first):

=============================  ==========  ========================================
Pair                           Verdict     Why
=============================  ==========  ========================================
qcow2/qed/vmdk/vhdx/luks/       unsafe      Header at offset 0 plus a CD001/NSR
dynamic vhd + ISO                           descriptor at 32 KiB: a CD consumer
                                            boots the ISO, qemu opens the container
                                            (and its backing file). Reported as the
                                            offset-0 format.
any offset-0 format + VDI       unsafe      VDI's magic at byte 64 inside another
                                            header: VirtualBox and qemu disagree.
any offset-0 format + MBR/GPT   unsafe      A raw-disk consumer sees partitions,
                                            qemu sees the container.
VDI + ISO, VDI + MBR/GPT        unsafe      Same reasons as above.
offset-0 format or VDI +        unsafe      The fixed disk's content would itself be
fixed-VHD footer                            a container: converting it to raw
                                            re-exposes that header to probing.
ISO + fixed-VHD footer          unsafe      Nobody makes these; a vhd consumer and a
                                            CD consumer see different media.
ISO + MBR and/or GPT            safe (iso)  isohybrid images: the partition table
                                            describes the ISO itself.
                                            ``partition_table`` is reported.
fixed VHD + MBR/GPT             safe (vhd)  A fixed VHD is a raw disk plus a footer;
                                            partitioned content is the normal case.
raw + MBR/GPT                   safe (raw)  A partitioned raw disk is raw; declared
                                            "raw" accepts it.
GPT/MBR partition whose first   unsafe      A host tool that opens the partition
sector is a qcow2/qed/vmdk/                 (e.g. after attaching the volume) would
vhdx/vhd/vdi header                         probe a container; no real disk needs it.
GPT/MBR partition holding LUKS, safe        Encrypted or CD partitions are ordinary
ISO or a filesystem                         guest content.
=============================  ==========  ========================================

Limits: partitions inside an MBR extended partition are not examined; LUKS
payload truncation at a sector boundary cannot be seen (the payload has no
length field); a fixed VHD that lost its footer is, correctly, a raw disk.
"""

from __future__ import annotations

from .inspector import StreamInspector, inspect, inspect_at
from .policy import FormatPolicy
from .verdict import BANNED_BY_DEFAULT, DEFAULT_ALLOWED_FORMATS, KNOWN_FORMATS, FormatVerdict

__all__ = ["BANNED_BY_DEFAULT", "DEFAULT_ALLOWED_FORMATS", "KNOWN_FORMATS", "FormatPolicy", "FormatVerdict",
           "StreamInspector", "inspect", "inspect_at"]

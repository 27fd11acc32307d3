"""The disk as a power cut would leave it, from a prefix of a recorded run.

The rule is the strict one POSIX promises (and what careful storage engines are
written against): after a power cut,

- a file holds what it held at its last ``fsync``; writes after that are gone
  (or, with ``zero_fill``, the file keeps its later length as zeros: a
  filesystem that persisted the size but not the data);
- a folder holds the entries it held at its last ``fsync`` of the folder itself:
  a file created, renamed, linked or removed since is as it was then;
- a folder created but never made durable in its parent is gone, and with it
  everything in it.

`Disk.cut(k)` replays the first ``k`` operations and writes the durable state
to a new folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAGE = 4096


@dataclass
class _Node:
    is_dir: bool
    data: bytearray = field(default_factory=bytearray)  # as the running system sees it
    durable: bytes | None = None  # at the last fsync
    children: dict[str, int] = field(default_factory=dict)
    durable_children: dict[str, int] | None = None  # at the last fsync of the folder


class Disk:
    """Replays a recorder's operations; each prefix gives a disk after a power cut."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.root = int(record["root_ino"])
        self.ops: list[tuple[Any, ...]] = record["ops"]

    def marks(self) -> dict[int, int]:
        """Each mark (an acknowledged write of the workload): its position in the record."""
        return {int(op[1]): i for i, op in enumerate(self.ops) if op[0] == "mark"}

    def boundaries(self) -> list[int]:
        """Positions right after each fsync of a file or folder: the cut points where
        what is durable changes."""
        return [i + 1 for i, op in enumerate(self.ops) if op[0] in ("fsync", "fsyncdir")]

    def _replay(self, k: int) -> dict[int, _Node]:
        """The nodes after the first ``k`` operations, by node number. The record
        names files by inode number, which the backing filesystem reuses once a
        file is gone; each creation here is a new node, and ``live`` maps an inode
        number to the node it names now."""
        nodes: dict[int, _Node] = {0: _Node(True, durable_children={})}
        live: dict[int, int] = {self.root: 0}

        def node(ino: int) -> _Node:
            return nodes[live[ino]]

        for op in self.ops[:k]:
            kind = op[0]
            if kind in ("create", "mkdir"):
                _, parent, name, ino = op
                number = len(nodes)
                nodes[number] = _Node(kind == "mkdir")
                if kind == "mkdir":
                    nodes[number].durable_children = {}
                live[ino] = number
                node(parent).children[name] = number
            elif kind == "write":
                _, ino, offset, data = op
                buf = node(ino).data
                if len(buf) < offset:
                    buf.extend(b"\0" * (offset - len(buf)))
                buf[offset : offset + len(data)] = data
            elif kind == "truncate":
                _, ino, size = op
                buf = node(ino).data
                del buf[size:]
                buf.extend(b"\0" * (size - len(buf)))
            elif kind == "fsync":
                target = node(op[1])
                target.durable = bytes(target.data)
            elif kind == "fsyncdir":
                target = node(op[1])
                target.durable_children = dict(target.children)
            elif kind == "rename":
                _, src, src_name, dst, dst_name = op
                node(dst).children[dst_name] = node(src).children.pop(src_name)
            elif kind == "link":
                _, parent, name, ino = op
                node(parent).children[name] = live[ino]
            elif kind == "unlink":
                _, parent, name = op
                node(parent).children.pop(name, None)
        return nodes

    def cut(self, k: int, into: Path, *, zero_fill: bool = False) -> Path:
        """Write the disk as a power cut after operation ``k`` leaves it into ``into``."""
        nodes = self._replay(k)
        into.mkdir(parents=True)

        def build(ino: int, where: Path) -> None:
            for name, child in (nodes[ino].durable_children or {}).items():
                node = nodes[child]
                path = where / name
                if node.is_dir:
                    path.mkdir()
                    build(child, path)
                    continue
                data = node.durable or b""
                if zero_fill and len(node.data) > len(data):
                    data += b"\0" * (len(node.data) - len(data))
                path.write_bytes(data)

        build(0, into)
        return into


def cut_points(disk: Disk, at_least: int) -> list[int]:
    """Every durability boundary and the operations around it, then evenly spaced
    positions until there are ``at_least`` (or every position)."""
    total = len(disk.ops)
    points = {0, total}
    for b in disk.boundaries():
        points.update({b - 1, b, b + 1})
    step = max(1, total // max(1, at_least - len(points)))
    points.update(range(0, total, step))
    return sorted(p for p in points if 0 <= p <= total)


def walk(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


__all__ = ["Disk", "cut_points", "walk"]

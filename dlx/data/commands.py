"""`dlx data ...`: commands about datasets' files, ahead of any training. dlx/cli.py registers each under `dlx data`
(turning a DlxError into one line and exit code 2). Nothing here imports torch."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dlx.errors import DlxError

app = typer.Typer(no_args_is_help=True, help="Datasets' files: download them ahead of time, shard an image folder.")


def fetch(
    names: Annotated[list[str], typer.Argument(
        metavar="NAME...", help="Datasets: mnist, fashion_mnist, kmnist, cifar10, cifar100, svhn, tinyshakespeare.")],
    root: Annotated[Optional[Path], typer.Option(help="The data dir (default: $DLX_DATA, else ~/.cache/dlx).")] = None,
) -> None:
    """Download datasets into the data dir now, as `dlx train` would on first use: checksums checked, a partial
    file resumed, one process at a time. $DLX_DATA_MIRROR=URL fetches MIRROR/<dataset>/<file> instead."""
    from rich.console import Console

    from dlx.data import download

    if download.offline():
        raise DlxError("DLX_OFFLINE is set, so dlx downloads nothing; unset it to fetch")
    for name in names:  # every name checked before anything is fetched
        download.sources(name)
    base = download.data_root(str(root) if root is not None else None)
    for name in dict.fromkeys(names):
        fetched = download.fetch(name, base)
        Console().print(f"{name}: {'downloaded into' if fetched else 'already in'} {base}", highlight=False,
                        soft_wrap=True, markup=False)


def shard(
    folder: Annotated[Path, typer.Argument(help="An image folder: a sub-folder per class.")],
    dest: Annotated[Path, typer.Option("--out", help="The folder the shards go to.")],
    per_shard: Annotated[int, typer.Option(min=1, max=10_000_000, help="Samples per shard.")] = 1000,
) -> None:
    """Write an image folder as WebDataset-style tar shards (key.jpg + key.cls) and classes.txt, for data.name: shards."""
    from rich.console import Console

    from dlx.data.shards import write

    written = write(folder, dest, per_shard)
    Console().print(f"wrote {len(written)} shards to {dest}: data.path: "
                    f"\"{dest}/train-{{{written[0].stem[6:]}..{written[-1].stem[6:]}}}.tar\"",
                    highlight=False, soft_wrap=True, markup=False)

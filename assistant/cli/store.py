"""`index` and `verify`: bring the store in line with the corpus, and check it against the files."""

from __future__ import annotations

import argparse
import json

from assistant.cli import common as cli_common
from assistant.cli.common import (
    EXIT_FAILED, EXIT_OK, CliError, one_line, plural, progress, reporter, require_corpus, settings_from,
)


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    index = sub.add_parser(
        "index", parents=[common], help="bring the index in line with the corpus now (loading does it too)",
        description="Index new and changed files, drop removed ones, finish an interrupted run; files that did not "
        "change are not embedded again. --force empties the index (or drops the Milvus collection) and indexes "
        "everything again. Files that cannot be indexed are listed with the reason.",
    )
    index.add_argument("--json", action="store_true", help="print what the store holds and what was done, as JSON")
    index.add_argument("--force", action="store_true", help="rebuild from empty")

    verify = sub.add_parser(
        "verify", parents=[common], help="check every stored chunk against the corpus files",
        description="Check the index as it is, before anything repairs it: that it can be read, that each indexed "
        "file is in the corpus folder unchanged, and that every stored chunk is exactly its span of the file "
        "(source_text[start:end]); exit 1 on any difference. Run it where the files are when the serving machine "
        "does not hold them.",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    return run_index(args) if args.command == "index" else run_verify(args)


def run_index(args: argparse.Namespace) -> int:
    from assistant.indexing import open_synced
    from assistant.stores import StoreError

    settings = settings_from(args)
    require_corpus(settings)
    try:
        store, report = open_synced(settings, cli_common.make_embedder(settings), force=args.force, on_change=reporter(args),
                                    show_progress=progress(args))
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    stats = store.stats()
    store.close()
    skipped = [{"source": s.source, "reason": s.reason} for s in report.skipped]
    if args.json:
        done = {"added": report.added, "changed": report.changed, "removed": report.removed,
                "unchanged": report.unchanged, "chunks_embedded": report.chunks, "rebuilt": report.rebuilt}
        print(json.dumps({**stats, "sync": done, "skipped": skipped}, sort_keys=True, indent=2, default=str))
        return EXIT_OK
    for item in report.skipped:
        print(f"skipped {one_line(item.source)}: {one_line(item.reason)}")
    changes = f"{len(report.added)} new, {len(report.changed)} changed, {len(report.removed)} removed"
    print(f"{plural(stats['chunks'], 'chunk')} from {plural(stats['files'], 'file')} in {stats['location']} "
          f"({stats['backend']}, {stats['index_kind']} index, model {stats['model']}); this run: {changes}, "
          f"{plural(report.chunks, 'chunk')} embedded")
    return EXIT_OK


def run_verify(args: argparse.Namespace) -> int:
    from assistant.corpus import reader_limits
    from assistant.stores import StoreError, StoreInvalid, open_store
    from assistant.verify import verify_store

    settings = settings_from(args)
    require_corpus(settings)
    embedder = cli_common.make_embedder(settings)
    try:
        store = open_store(settings, model=embedder.name, dimension=embedder.dimension)
    except StoreInvalid as exc:  # reported as found: verify never repairs
        problems, files, chunks = [f"the index cannot be used: {exc}"], 0, 0
    except StoreError as exc:
        raise CliError(str(exc)) from exc
    else:
        report = verify_store(store, settings.corpus_dir, uploads_dir=settings.uploads_folder,
                              max_bytes=settings.max_file_bytes, limits=reader_limits(settings))
        store.close()
        problems, files, chunks = report.problems, report.files, report.chunks
    if args.json:
        print(json.dumps({"backend": settings.backend, "files": files, "chunks": chunks,
                          "ok": not problems, "problems": problems}, sort_keys=True))
    else:
        print(f"{settings.backend}: {plural(chunks, 'chunk')} of {plural(files, 'file')} checked against "
              f"{settings.corpus_dir}: " + ("all exact" if not problems else plural(len(problems), "problem")))
        for line in problems:
            print(f"  {one_line(line)}")
    return EXIT_OK if not problems else EXIT_FAILED

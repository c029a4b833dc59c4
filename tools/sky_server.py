"""Runs the local SDSS-compatible service (SkyServer, SAS, Pan-STARRS).

  python tools/sky_server.py --host 127.0.0.1 --port 8080
  python tools/sky_server.py --port 0 --fault_rate 0.2 --seed 1
  python tools/sky_server.py --preview 003918-3-0213 out.png
  python tools/sky_server.py --field_labels 6 field_labels.csv

Prints the base URLs as environment assignments, e.g.

  SKYTFDS_SKYSERVER_URL=http://127.0.0.1:8080
  SKYTFDS_SAS_URL=http://127.0.0.1:8080/sas
  SKYTFDS_PS1_URL=http://127.0.0.1:8080

then serves until SIGTERM or SIGINT (Ctrl-C). Port 0 picks a free port. The
catalogue defaults to ../shared/data/catalogs/specobj_35k.csv (from the repo
root) when present, else a small generated one (`--catalog generated` forces
it); real frames are served byte for byte from --sas_root (default
../shared/data/sas when present; '' for none).

--field_labels N CSV writes every background star and galaxy (r 14-23) of the
N simulated fields holding most catalogue objects, labelled by what the
emulator drew, in the real photometric labels file's layout, and exits: a
faint labelled training set (`skytfds.emulator.field_labels`), to build as
SKYTFDS_CATALOG (config custom) against a server with the same --catalog and
--seed.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import re
import signal
import sys

_REPO = pathlib.Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:
  sys.path.insert(0, str(_REPO))

# pylint: disable=g-import-not-at-top,wrong-import-position
from aiohttp import web

from skytfds import settings
from skytfds import survey
from skytfds.emulator import app as app_lib
from skytfds.emulator import catalogs
from skytfds.emulator import faults as faults_lib
# pylint: enable=g-import-not-at-top,wrong-import-position

_FRAME_NAME_RE = re.compile(r'(\d{1,6})-([1-6])-(\d{1,4})')


def _parse_args(argv: list[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      description='Local SDSS-compatible service: SkyServer SQL and cutouts, '
      'SAS frames, Pan-STARRS cutouts, with fault injection.')
  parser.add_argument('--host', default='127.0.0.1',
                      help='address to bind (default 127.0.0.1, loopback only)')
  parser.add_argument('--port', type=int, default=8080,
                      help='TCP port; 0 picks a free one (default 8080)')
  parser.add_argument('--catalog', default=None,
                      help='catalogue CSV/JSON (default: '
                      '../shared/data/catalogs/specobj_35k.csv when present; '
                      '"generated" for a small built-in one)')
  parser.add_argument('--sas_root', default=None,
                      help='local SAS mirror whose frames are served byte for '
                      'byte (default ../shared/data/sas when present; "" for '
                      'none: every frame simulated)')
  parser.add_argument('--cache_dir', default=None,
                      help='folder for rendered frames and cutouts, kept '
                      'across runs (default: in memory only)')
  parser.add_argument('--seed', type=int, default=0,
                      help='seed of the simulated sky and of the faults')
  parser.add_argument('--fault_rate', type=float, default=0.0,
                      help='fraction of payload responses that fail, 0..1')
  parser.add_argument('--fault_kinds', default='',
                      help='comma-separated kinds (default: '
                      f'{",".join(faults_lib.FAULT_KINDS)}; "all" adds '
                      f'{",".join(faults_lib.OPTIONAL_KINDS)})')
  parser.add_argument('--max_faults_per_url', type=int, default=3,
                      help='after this many faults a URL is always served; '
                      '0 for no cap (default 3)')
  parser.add_argument('--latency_ms', type=float, default=0.0,
                      help='milliseconds added to every response')
  parser.add_argument('--slow_ms', type=float, default=2000.0,
                      help='delay of a "slow" fault, milliseconds')
  parser.add_argument('--sql_delay_s', type=float, default=0.0,
                      help='seconds every SqlSearch query takes (to watch a '
                      "client wait; the real server allows 600)")
  parser.add_argument('--sql_queries_per_minute', type=int, default=60,
                      help="SkyServer's per-client query limit (spExecuteSQL); "
                      '0 for none (default 60, as the real server)')
  parser.add_argument('--preview', nargs=2, metavar=('RUN-CAMCOL-FIELD', 'PNG'),
                      help='save an SDSS-style i,r,g colour rendering of the '
                      'simulated field (e.g. 003918-3-0213 out.png) and exit')
  parser.add_argument('--field_labels', nargs=2, metavar=('N', 'CSV'),
                      help='write the labelled background sources of the N '
                      'densest simulated fields to CSV and exit (see above)')
  args = parser.parse_args(argv)
  if args.field_labels and not (args.field_labels[0].isdigit()
                                and int(args.field_labels[0]) > 0):
    parser.error(f'--field_labels {args.field_labels[0]} ...: give a number '
                 'of fields (1 or more), then the CSV path')
  if not 0.0 <= args.fault_rate <= 1.0:
    parser.error(f'--fault_rate={args.fault_rate}: give a fraction from 0 to 1')
  if args.max_faults_per_url < 0:
    parser.error(f'--max_faults_per_url={args.max_faults_per_url}: give 0 '
                 '(no cap) or more')
  if args.sql_delay_s < 0 or args.sql_queries_per_minute < 0:
    parser.error('--sql_delay_s and --sql_queries_per_minute take 0 or more')
  if not 0 <= args.port <= 65535:
    parser.error(f'--port={args.port}: give 0..65535')
  try:
    faults_lib.FaultPlan(kinds=faults_lib.parse_kinds(args.fault_kinds))
  except ValueError as e:
    parser.error(f'--fault_kinds={args.fault_kinds!r}: {e}')
  return args


def _catalog(args: argparse.Namespace):
  if args.catalog == 'generated':
    return catalogs.load_catalog(None, seed=args.seed)
  path = args.catalog or catalogs.default_catalog_path()
  if path is not None and not pathlib.Path(path).is_file():
    raise SystemExit(f'--catalog={path}: no such file; give a SkyServer CSV '
                     'or JSON export, or "generated".')
  return catalogs.load_catalog(path, seed=args.seed)


def _sas_root(args: argparse.Namespace) -> str | None:
  if args.sas_root is None:
    root = catalogs.default_sas_root()
    return str(root) if root else None
  if args.sas_root == '':
    return None
  if not pathlib.Path(args.sas_root).is_dir():
    raise SystemExit(f'--sas_root={args.sas_root}: no such folder; give a '
                     'local SAS mirror (dr17/eboss/photoObj/frames/...) or "".')
  return args.sas_root


def _preview(catalog, args: argparse.Namespace) -> int:
  """Saves the simulated field's i,r,g colour image as a PNG."""
  from skytfds.catalog import FrameId  # pylint: disable=g-import-not-at-top
  from skytfds.emulator.sky import Sky  # pylint: disable=g-import-not-at-top
  name, out = args.preview
  m = _FRAME_NAME_RE.fullmatch(name)
  if not m:
    raise SystemExit(f'--preview {name}: give RUN-CAMCOL-FIELD, e.g. '
                     '003918-3-0213.')
  run, camcol, field = (int(v) for v in m.groups())
  frame_id = FrameId(run, survey.RERUN, camcol, field)
  sky = Sky(catalog, seed=args.seed, sas_root=None)  # Always simulated.
  if frame_id not in sky.frame_ids():
    raise SystemExit(f'--preview {name}: no catalogue object lies in field '
                     f'{frame_id.name}; pick a field of the catalogue '
                     f'({catalog.source}).')
  sky.preview_png(frame_id, out, simulated=True)
  print(f'saved {out}: simulated field {frame_id.name}, i,r,g as R,G,B, rows '
        'flipped as in SDSS frame-irg JPEGs', flush=True)
  return 0


def _field_labels(catalog, args: argparse.Namespace) -> int:
  """Writes the labelled background sources of the densest simulated fields."""
  from skytfds.emulator import field_labels  # pylint: disable=g-import-not-at-top
  from skytfds.emulator.sky import Sky  # pylint: disable=g-import-not-at-top
  n, out = int(args.field_labels[0]), pathlib.Path(args.field_labels[1])
  sky = Sky(catalog, seed=args.seed, sas_root=_sas_root(args))
  frames = field_labels.densest_fields(sky, n)
  rows = field_labels.label_rows(sky, frames)
  out.write_text(field_labels.labels_csv(rows))
  stars = sum(row['class'] == 'STAR' for row in rows)
  print(f'saved {out}: {len(rows)} objects ({stars} STAR, {len(rows) - stars} '
        f'GALAXY) with r {field_labels.R_RANGE[0]:g}-{field_labels.R_RANGE[1]:g} '
        f'in {len(frames)} simulated fields '
        f'({", ".join(f.name for f in frames)}) of {catalog.source}, seed '
        f'{args.seed}; build it against a sky_server with the same --catalog '
        'and --seed', flush=True)
  return 0


async def _serve(args: argparse.Namespace, app: web.Application) -> None:
  runner = web.AppRunner(app, handle_signals=False, access_log=None)
  await runner.setup()
  site = web.TCPSite(runner, args.host, args.port)
  try:
    await site.start()
  except OSError as e:
    await runner.cleanup()
    raise SystemExit(f'cannot listen on {args.host}:{args.port}: '
                     f'{e.strerror or e}; pick another --port (0 = any free '
                     'one).') from None
  host, port = runner.addresses[0][:2]
  base = f'http://{host if ":" not in host else f"[{host}]"}:{port}'
  print(f'{settings.SKYSERVER_URL_ENV}={base}', flush=True)
  print(f'{settings.SAS_URL_ENV}={base}/sas', flush=True)
  print(f'{settings.PS1_URL_ENV}={base}', flush=True)
  stop = asyncio.Event()
  loop = asyncio.get_running_loop()
  for sig in (signal.SIGTERM, signal.SIGINT):
    loop.add_signal_handler(sig, stop.set)
  try:
    await stop.wait()
  finally:
    await runner.cleanup()
  print('sky_server: stopped', file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
  args = _parse_args(sys.argv[1:] if argv is None else argv)
  catalog = _catalog(args)
  if args.preview:
    return _preview(catalog, args)
  if args.field_labels:
    return _field_labels(catalog, args)
  from skytfds.emulator.sky import Sky  # pylint: disable=g-import-not-at-top
  sky = Sky(catalog, seed=args.seed, sas_root=_sas_root(args))
  app = app_lib.make_app(
      sky, catalog=catalog, cache_dir=args.cache_dir,
      fault_rate=args.fault_rate, seed=args.seed, latency_ms=args.latency_ms,
      fault_kinds=args.fault_kinds or None,
      max_faults_per_url=args.max_faults_per_url or None,
      slow_ms=args.slow_ms, sql_delay_s=args.sql_delay_s,
      sql_queries_per_minute=args.sql_queries_per_minute or None)
  print(f'sky_server: {len(catalog.objects)} objects from {catalog.source}, '
        f'{len(sky.frame_ids())} fields; faults {args.fault_rate:g} '
        f'(seed {args.seed})', file=sys.stderr, flush=True)
  asyncio.run(_serve(args, app))
  return 0


if __name__ == '__main__':
  sys.exit(main())

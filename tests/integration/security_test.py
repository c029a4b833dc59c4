"""Security: validated paths and URLs, size caps, TLS, no shell, no pickle.

Issue 8. Catalogue values are validated before they reach a URL or a path; a
local SAS mirror, the fetch cache and the emulator's SAS route cannot be
escaped with `..`; decompressed frames, HTTP bodies and image sizes are
capped; TLS certificates are verified; the product code runs no shell and
unpickles nothing; the emulator binds 127.0.0.1 unless told otherwise.
Everything runs on 127.0.0.1 or in tmp_path.
"""

import asyncio
import bz2
import datetime
import io
import ipaddress
import pathlib
import re
import ssl
import subprocess
import sys
import time

from aiohttp import web
import numpy as np
from PIL import Image
import pytest

from skytfds import catalog
from skytfds.catalog import FrameId
from skytfds.datasets import frame_stage
from skytfds.datasets import products
from skytfds.emulator import app as emulator_app
from skytfds.emulator import sky as sky_lib
from skytfds.imaging import frames as frames_lib
from skytfds.services import http
from skytfds.services import ps1
from skytfds.services import sas
from skytfds.services import skyserver

REPO = pathlib.Path(__file__).resolve().parents[2]
FRAME = FrameId(3918, 301, 3, 213)
GOOD_ROW = '229.54,42.76,STAR,3918,301,3,213'
HEADER = 'ra,dec,class,run,rerun,camcol,field'


# ---------------------------------------------------------------------------
# The product code: no disabled TLS, no shell, no pickle.

_FORBIDDEN = {
    r'\bssl\s*=\s*False': 'TLS verification disabled (aiohttp ssl=False)',
    r'\bverify_ssl\b': 'TLS verification switch (aiohttp verify_ssl)',
    r'\bverify\s*=\s*False': 'TLS verification disabled (verify=False)',
    r'CERT_NONE|check_hostname\s*=\s*False|_create_unverified_context':
        'TLS verification disabled (ssl module)',
    r'shell\s*=\s*True': 'a shell command (shell=True)',
    r'\bos\.system\(|\bos\.popen\(': 'a shell command (os.system/os.popen)',
    r'\bimport\s+(c?pickle|cloudpickle|dill)\b|\b(pickle|dill)\.loads?\(':
        'pickle',
    r'allow_pickle\s*=\s*True': 'numpy loading pickled objects',
    r'\beval\(|\bexec\(': 'eval/exec of text',
    r'\byaml\.load\(': 'yaml.load (arbitrary objects)',
    r'MAX_IMAGE_PIXELS\s*=\s*None': "PIL's decompression-bomb cap removed",
}


def _product_files() -> list[pathlib.Path]:
  files = [REPO / 'setup.py']
  for folder in ('skytfds', 'trainers', 'tools'):
    files.extend(p for p in sorted((REPO / folder).rglob('*.py'))
                 if not p.name.endswith('_test.py'))
  return files


def test_product_code_never_disables_tls_runs_a_shell_or_unpickles():
  files = _product_files()
  assert len(files) > 30
  found = []
  for path in files:
    for number, line in enumerate(path.read_text().splitlines(), 1):
      for pattern, what in _FORBIDDEN.items():
        if re.search(pattern, line):
          found.append(f'{path.relative_to(REPO)}:{number}: {what}: '
                       f'{line.strip()}')
  assert not found, '\n'.join(found)


def _self_signed_context(tmp_path: pathlib.Path) -> ssl.SSLContext:
  """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
  # cryptography comes with apache-beam (the beam extra); skipped without it.
  x509 = pytest.importorskip('cryptography.x509')
  # pylint: disable=g-import-not-at-top
  from cryptography.hazmat.primitives import hashes
  from cryptography.hazmat.primitives import serialization
  from cryptography.hazmat.primitives.asymmetric import ec
  # pylint: enable=g-import-not-at-top
  key = ec.generate_private_key(ec.SECP256R1())
  name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME,
                                       '127.0.0.1')])
  now = datetime.datetime.now(datetime.timezone.utc)
  cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
          .public_key(key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.SubjectAlternativeName(
              [x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]),
                         critical=False)
          .sign(key, hashes.SHA256()))
  (tmp_path / 'cert.pem').write_bytes(
      cert.public_bytes(serialization.Encoding.PEM))
  (tmp_path / 'key.pem').write_bytes(key.private_bytes(
      serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
      serialization.NoEncryption()))
  context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
  context.load_cert_chain(tmp_path / 'cert.pem', tmp_path / 'key.pem')
  return context


async def _serve(app: web.Application, ssl_context=None):
  runner = web.AppRunner(app, access_log=None)
  await runner.setup()
  site = web.TCPSite(runner, '127.0.0.1', 0, ssl_context=ssl_context)
  await site.start()
  return runner, runner.addresses[0][1]


def test_tls_certificates_are_verified(tmp_path):
  """A server with an untrusted certificate is refused, once, as 'tls'."""
  context = _self_signed_context(tmp_path)

  async def main():
    app = web.Application()
    app.router.add_get('/catalog.csv', lambda r: web.Response(
        text=f'{HEADER}\n{GOOD_ROW}\n'))
    runner, port = await _serve(app, context)
    try:
      async with http.Fetcher(None, backoff_s=0.01) as fetcher:
        with pytest.raises(http.FetchError) as info:
          await fetcher.fetch(f'https://127.0.0.1:{port}/catalog.csv',
                              kind='text')
        return info.value, fetcher.stats
    finally:
      await runner.cleanup()

  error, stats = asyncio.run(main())
  assert error.reason == 'tls'
  assert str(error).startswith(f'cannot fetch {error.url}: TLS certificate '
                               'not trusted: ')
  assert stats.requests == 1  # Not retried: a certificate does not heal.


# ---------------------------------------------------------------------------
# Catalogue values are validated before they reach a path or a URL.


@pytest.mark.parametrize('column, value', [
    ('run', '../../etc'),
    ('run', '3918/../../../etc'),
    ('rerun', '301%2F..'),
    ('camcol', '3;rm -rf ~'),
    ('field', '213/../../x'),
    ('field', '0x10'),
    ('run', '1e3'),
])
def test_path_text_in_a_catalogue_is_refused_at_parse(column, value):
  row = dict(zip(HEADER.split(','), GOOD_ROW.split(',')))
  row[column] = value
  text = HEADER + '\n' + ','.join(row[c] for c in HEADER.split(',')) + '\n'
  with pytest.raises(catalog.CatalogError) as info:
    catalog.parse_catalog(text, 'evil.csv')
  assert (f'line 2, column {column}: {value!r} is not a whole number'
          in str(info.value))


@pytest.mark.parametrize('frame', [
    FrameId('../../etc', 301, 3, 213),
    FrameId(3918, 301, 3, '213/../../x'),
    FrameId(3918, '301', 3, 213),
    FrameId(3918.0, 301, 3, 213),
    FrameId(True, 301, 3, 213),
    FrameId(-1, 301, 3, 213),
    FrameId(0, 301, 3, 213),
    FrameId(1_000_000, 301, 3, 213),
    FrameId(3918, 2048, 3, 213),
    FrameId(3918, 301, 7, 213),
    FrameId(3918, 301, 3, 10_000),
    FrameId(3918, 301, 3, -1),
])
def test_sas_paths_take_only_integers_in_range(frame, tmp_path):
  with pytest.raises(ValueError, match='expected|out of range'):
    sas.frame_path(frame, 'r')
  with pytest.raises(ValueError):
    sas.frame_url(frame, 'r', base=str(tmp_path))
  with pytest.raises(ValueError):
    sas.cache_name(frame, 'r')


@pytest.mark.parametrize('band, release', [
    ('../r', 17), ('r/../..', 17), ('R', 17), ('', 17), ('r', '17/..'),
    ('r', 11), ('r', 18), ('r', 17.0)])
def test_sas_paths_take_only_known_bands_and_releases(band, release):
  with pytest.raises(ValueError):
    sas.frame_path(FRAME, band, release)


def test_sas_path_of_valid_values_stays_inside_the_mirror(tmp_path):
  mirror = (tmp_path / 'sas').resolve()
  for frame in (FrameId(1, 0, 1, 0), FrameId(np.int64(999_999), 2047, 6, 9999),
                FRAME):
    path = pathlib.Path(sas.frame_url(frame, 'u', base=str(mirror))).resolve()
    assert mirror in path.parents
    assert re.fullmatch(r'dr17/eboss/photoObj/frames/\d+/\d+/[1-6]/'
                        r'frame-u-\d{6}-[1-6]-\d{4}\.fits\.bz2',
                        str(path.relative_to(mirror)))


def test_a_refused_frame_never_touches_the_mirror(tmp_path):
  """fetch_frame refuses before any read: the fetcher records no request."""

  async def main():
    async with http.Fetcher(tmp_path / 'cache') as fetcher:
      with pytest.raises(ValueError):
        await sas.fetch_frame(fetcher, FrameId('../../etc', 301, 3, 213), 'r',
                              base=str(tmp_path))
      return fetcher.stats

  assert asyncio.run(main()).requests == 0


@pytest.mark.parametrize('call', [
    lambda: skyserver.cutout_url('1&cmd=DROP', 0.0),
    lambda: skyserver.cutout_url(float('nan'), 0.0),
    lambda: skyserver.cutout_url(10.0, float('inf')),
    lambda: skyserver.cutout_url(10.0, 0.0, opt='G&ra=0'),
    lambda: skyserver.cutout_url(10.0, 0.0, width='240&x=1'),
    lambda: skyserver.cutout_cache_name(10.0, 0.0, scale=float('nan')),
    lambda: ps1.fitscut_url(10.0, 0.0, red='../../etc/passwd', green='a.fits',
                            blue='b.fits'),
    lambda: ps1.fitscut_url(10.0, 0.0, red='a.fits', green='x&cmd=1',
                            blue='b.fits'),
    lambda: catalog.class_query("STAR' OR '1'='1", 10),
    lambda: catalog.class_query('STAR', '10; DROP TABLE SpecObj'),
    lambda: catalog.class_query('STAR', 10, region=(0, float('nan'), 0, 1)),
    lambda: catalog.class_query('STAR', 10,
                                mag_limits={'r': ('0 OR 1=1', 22)}),
], ids=['cutout_ra_text', 'cutout_ra_nan', 'cutout_dec_inf', 'cutout_opt',
        'cutout_width_text', 'cache_scale_nan', 'ps1_file_dotdot',
        'ps1_file_query', 'sql_class_quote', 'sql_top_text', 'sql_region_nan',
        'sql_mag_text'])
def test_urls_and_sql_take_only_validated_values(call):
  with pytest.raises(ValueError):  # CatalogError is a ValueError.
    call()


# ---------------------------------------------------------------------------
# The fetch cache and the emulator's SAS route cannot be escaped.


@pytest.mark.parametrize('name', [
    '../outside', 'sas/../../outside', '/etc/passwd', 'C:/x', 'a\\..\\b',
    'a\x00b', '', '.', 'sas//x', 'sas/./x'])
def test_cache_names_cannot_escape(name, tmp_path):
  with pytest.raises(ValueError):
    http.validate_cache_name(name)
  fetcher = http.Fetcher(tmp_path / 'cache')
  with pytest.raises(ValueError):
    fetcher.cache_path(name)

  async def fetch():
    async with http.Fetcher(tmp_path / 'cache') as f:
      await f.fetch('http://127.0.0.1:9/x', kind='text', cache_name=name)

  with pytest.raises(ValueError):  # Before any request.
    asyncio.run(fetch())


def test_cache_cannot_be_escaped_through_a_symlink(tmp_path):
  outside = tmp_path / 'outside'
  outside.mkdir()
  (outside / 'secret.txt').write_text('top secret')
  cache = tmp_path / 'cache'
  cache.mkdir()
  (cache / 'sas').symlink_to(outside)
  fetcher = http.Fetcher(cache)
  with pytest.raises(ValueError, match='leaves the cache directory'):
    fetcher.cache_path('sas/secret.txt')
  with pytest.raises(ValueError):
    fetcher.evict('sas/secret.txt')
  assert (outside / 'secret.txt').read_text() == 'top secret'


async def _raw_get(port: int, target: str) -> bytes:
  """An HTTP/1.1 GET of `target` exactly as written (no client normalising)."""
  reader, writer = await asyncio.open_connection('127.0.0.1', port)
  writer.write(f'GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n'
               'Connection: close\r\n\r\n'.encode())
  await writer.drain()
  data = await reader.read()
  writer.close()
  return data


def test_emulator_sas_route_cannot_be_escaped(tmp_path):
  (tmp_path / 'secret.txt').write_text('TOP SECRET')
  mirror = tmp_path / 'sas'
  folder = mirror / 'dr17/eboss/photoObj/frames/301/3918/3'
  folder.mkdir(parents=True)
  (folder / 'frame-r-003918-3-0213.fits.bz2').write_bytes(bz2.compress(b'x'))
  objects = catalog.parse_catalog(f'{HEADER}\n{GOOD_ROW}\n', 'one.csv')
  frames = '/sas/dr17/eboss/photoObj/frames/301/3918/3'
  targets = [
      '/sas/../secret.txt',
      '/sas/%2e%2e/secret.txt',
      '/sas/..%2fsecret.txt',
      f'{frames}/../../../../../../../secret.txt',
      f'{frames}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt',
      f'{frames}/..%2f..%2f..%2f..%2f..%2f..%2f..%2fsecret.txt',
      '/sas/' + str(tmp_path / 'secret.txt'),
      '/cgi-bin/fitscut.cgi?ra=1&dec=1&red=../../secret.txt&green=a&blue=b',
  ]
  with emulator_app.EmulatorThread(
      sky_lib.Sky(objects, seed=0, sas_root=str(mirror))) as emulator:

    async def main():
      return [await _raw_get(emulator.port, t) for t in targets]

    answers = asyncio.run(main())
  for target, answer in zip(targets, answers):
    status = answer.split(b'\r\n', 1)[0]
    assert re.match(rb'HTTP/1\.1 (400|403|404) ', status), (target,
                                                            answer[:200])
    assert b'TOP SECRET' not in answer, target


# ---------------------------------------------------------------------------
# Decompression, body and image sizes are capped.


def test_bz2_bomb_is_refused_at_the_cap():
  bomb = bz2.compress(b'\0' * (frames_lib.MAX_DECOMPRESSED_BYTES + 1), 9)
  assert len(bomb) < 1000
  with pytest.raises(frames_lib.FrameError, match=(
      'decompresses to more than 67108864 bytes .* refusing it as a bz2 '
      'bomb')):
    frames_lib.decode_frame(bomb, band='r', source='bomb.fits.bz2')


def test_bz2_bomb_split_over_several_streams_is_refused():
  half = bz2.compress(b'\0' * (frames_lib.MAX_DECOMPRESSED_BYTES // 2 + 1), 9)
  with pytest.raises(frames_lib.FrameError, match='decompresses to more than'):
    frames_lib.decode_frame(half + half, source='two.fits.bz2')


def test_http_bodies_are_capped(tmp_path):
  big = b'BZh9' + b'\0' * (3 * 2**20)

  async def chunked(request):
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(big), 2**16):
      await response.write(big[start:start + 2**16])
    return response

  (tmp_path / 'big.bin').write_bytes(big)

  async def main():
    app = web.Application()
    app.router.add_get('/sized', lambda r: web.Response(body=big))
    app.router.add_get('/chunked', chunked)
    runner, port = await _serve(app)
    errors = {}
    try:
      for name in ('sized', 'chunked', 'local'):
        url = (str(tmp_path / 'big.bin') if name == 'local' else
               f'http://127.0.0.1:{port}/{name}')
        async with http.Fetcher(None, max_bytes=2**20) as fetcher:
          with pytest.raises(http.FetchError) as info:
            await fetcher.fetch(url, kind='bz2')
          errors[name] = (info.value, fetcher.stats.requests)
    finally:
      await runner.cleanup()
    return errors

  for name, (error, requests) in asyncio.run(main()).items():
    assert error.reason == 'too_large', (name, error)
    assert '1048576-byte cap' in str(error), (name, error)
    assert requests == 1, name  # Never retried.
  assert http.MAX_BODY_BYTES == 64 * 2**20


def _jpeg_claiming(width: int, height: int) -> bytes:
  out = io.BytesIO()
  Image.fromarray(np.zeros((240, 240, 3), np.uint8)).save(out, 'JPEG')
  data = bytearray(out.getvalue())
  sof = data.index(b'\xff\xc0')
  data[sof + 5:sof + 9] = height.to_bytes(2, 'big') + width.to_bytes(2, 'big')
  return bytes(data)


def test_jpeg_pixel_count_is_capped():
  """A 2 KB JPEG claiming 65000 x 65000 px is refused before decoding."""
  assert Image.MAX_IMAGE_PIXELS is not None  # Nobody lifted PIL's cap.
  with pytest.raises(products.BadImage, match=(
      r'does not decode as JPEG \(Image size \(4225000000 pixels\) exceeds '
      'limit')):
    products.check_jpeg(_jpeg_claiming(65000, 65000), 240)


def test_staged_stamps_are_read_without_pickle(tmp_path):
  path = tmp_path / 'frame.npz'
  with open(path, 'wb') as f:
    np.savez(f, keys=np.array(['1'], dtype=object),
             skips=np.array('{}'))
  with pytest.raises(ValueError, match='allow_pickle=False'):
    frame_stage.StagedFrame.read(path)


def test_credentials_never_appear_in_error_messages():
  error = http.FetchError('https://alice:s3cret@example.org/sas/x.fits.bz2',
                          'http_500', 'server error')
  assert 's3cret' not in str(error) and 'alice' not in str(error)
  assert error.url == 'https://example.org/sas/x.fits.bz2'


# ---------------------------------------------------------------------------
# The emulator listens on the loopback interface unless told otherwise.


def test_emulator_thread_binds_loopback_by_default():
  objects = catalog.parse_catalog(f'{HEADER}\n{GOOD_ROW}\n', 'one.csv')
  with emulator_app.EmulatorThread(sky_lib.Sky(objects, seed=0)) as emulator:
    assert emulator.url.startswith('http://127.0.0.1:')
    assert all(v.startswith(f'http://127.0.0.1:{emulator.port}')
               for v in emulator.environ().values())


def test_sky_server_binds_loopback_by_default():
  process = subprocess.Popen(
      [sys.executable, 'tools/sky_server.py', '--port', '0', '--catalog',
       'generated', '--sas_root', ''],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
      line = process.stdout.readline()
      if not line:
        break
      lines.append(line.strip())
      if line.startswith('SKYTFDS_PS1_URL='):
        break
  finally:
    process.terminate()
    _, stderr = process.communicate(timeout=60)
  urls = dict(line.split('=', 1) for line in lines if '=' in line)
  assert re.fullmatch(r'http://127\.0\.0\.1:\d+', urls.get(
      'SKYTFDS_SKYSERVER_URL', '')), (lines, stderr)
  assert urls['SKYTFDS_SAS_URL'] == urls['SKYTFDS_SKYSERVER_URL'] + '/sas'
  assert 'Traceback' not in stderr

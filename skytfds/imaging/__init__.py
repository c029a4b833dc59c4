"""SDSS frame imaging: decoding, stamps, colour rendering (pure, no I/O)."""

from skytfds.imaging.color import frame_rgb
from skytfds.imaging.color import lupton_rgb
from skytfds.imaging.frames import BadFrame
from skytfds.imaging.frames import CorruptStream
from skytfds.imaging.frames import decode_frame
from skytfds.imaging.frames import Frame
from skytfds.imaging.frames import FRAME_SHAPE
from skytfds.imaging.frames import FrameError
from skytfds.imaging.frames import FrameTooLarge
from skytfds.imaging.frames import MAX_COMPRESSED_BYTES
from skytfds.imaging.frames import MAX_DECOMPRESSED_BYTES
from skytfds.imaging.frames import MAX_HEADER_CARDS
from skytfds.imaging.jpeg import JpegError
from skytfds.imaging.jpeg import verify as verify_jpeg
from skytfds.imaging.stamps import align_to
from skytfds.imaging.stamps import cut_bands
from skytfds.imaging.stamps import cut_stamp
from skytfds.imaging.stamps import cut_stamps
from skytfds.imaging.stamps import StampError

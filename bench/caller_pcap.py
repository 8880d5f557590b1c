"""The real caller's media, as a pcap for SIPp's ``play_pcap_audio``: speech, one key, more speech.

A phone sends RTP for the whole call, also while the caller listens and when a key is pressed.
This module writes that as one RTP stream (one SSRC, sequence numbers and timestamps running on)
into a classic libpcap file (Ethernet/IPv4/UDP), which sipp/bench_real_caller.xml replays:

- 6 s of speech-like PCMU (espeak-ng, at a speaking level), a packet every 20 ms;
- the key "1" as RFC 4733 telephone events (payload type 101): five packets while the key is
  held, then the three end packets (E bit) one right behind the other, as SIPp's own
  dtmf_2833_*.pcap and Asterisk send them (§2.5.1.4), so "the last end packet" is the moment the
  key was let go, whichever copy the IVR acts on. The audio pauses meanwhile, as phones mute it;
- 4 s more speech, for a caller who keeps talking until the IVR hangs up (SIPp stops the replay
  when the call ends).

How SIPp uses the file (SIPp 3.6 prepare_pcap.c, send_packets.c): it keeps each packet's UDP
header and payload, rewrites the source to the call's own media address ([media_ip]:[media_port],
the address in the SDP offer, so the IVR accepts it at once) and the destination to the IVR's
address from the SDP answer (both ports offset by the packet's destination port minus the lowest
one in the file: all packets here have one destination port), recomputes the UDP checksum and
sends each packet as long after the first as the capture's timestamps say. The addresses written
here are placeholders.

The byte builders are plain functions; ``main`` renders the speech and writes the file:

    python -m bench.caller_pcap [--out sipp/audio/real-caller.pcap]
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ivr.media.g711 import ulaw_encode
from ivr.media.prompts import load_wav

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "sipp" / "audio" / "real-caller.pcap"

PCAP_MAGIC = 0xA1B2C3D4  # microsecond timestamps (0xA1B23C4D would be nanoseconds)
LINKTYPE_ETHERNET = 1
RATE = 8000
FRAME = 160  # samples per 20 ms packet
PCMU = 0
TELEPHONE_EVENT = 101
EVENTS = "0123456789*#ABCD"  # RFC 4733 §3.2: events 0-15

SPEECH = (
    "Hello, yes, I am calling about my internet connection. It has been dropping out every "
    "evening since last week, and I would like someone to have a look at it, please. "
    "I have already restarted the router twice."
)
SPEECH_BEFORE = 6.0  # seconds of speech before the key
SPEECH_AFTER = 4.0  # seconds after it
KEY = "1"
KEY_PACKETS = 5  # packets while the key is held (100 ms), before the three end packets


@dataclass(frozen=True)
class StreamPacket:
    """One RTP packet of the caller's stream and when it is sent (seconds after the first)."""

    at: float
    rtp: bytes


def pcap_file_header(snaplen: int = 65535, linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """The 24-byte libpcap global header (little-endian, version 2.4)."""
    return struct.pack("<IHHiIII", PCAP_MAGIC, 2, 4, 0, 0, snaplen, linktype)


def pcap_record(at: float, frame: bytes, snaplen: int = 65535) -> bytes:
    """One record: header (seconds, microseconds, captured and original length) and the frame,
    cut to ``snaplen`` as a capture would."""
    seconds = int(at)
    micros = round((at - seconds) * 1e6)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    kept = frame[:snaplen]
    return struct.pack("<IIII", seconds, micros, len(kept), len(frame)) + kept


def internet_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071); over data that holds its own right checksum it is 0."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def udp_frame(src: tuple[str, int], dst: tuple[str, int], payload: bytes) -> bytes:
    """An Ethernet II frame carrying IPv4 (no options) and UDP, checksums filled in."""
    src_ip, dst_ip = bytes(map(int, src[0].split("."))), bytes(map(int, dst[0].split(".")))
    length = 8 + len(payload)
    pseudo = src_ip + dst_ip + struct.pack("!BBH", 0, 17, length)
    udp = struct.pack("!HHHH", src[1], dst[1], length, 0) + payload
    udp_sum = internet_checksum(pseudo + udp) or 0xFFFF  # RFC 768: a computed 0 is sent as all ones
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0x4000, 64, 17, 0, src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
    ethernet = b"\0" * 12 + b"\x08\x00"  # loopback addresses are all zero
    return ethernet + ip + udp


def rtp_packet(
    payload_type: int, seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False
) -> bytes:
    """An RTP packet with the fixed 12-byte header (RFC 3550 §5.1): version 2, no CSRC."""
    second = (0x80 if marker else 0) | payload_type
    return struct.pack("!BBHII", 0x80, second, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc) + payload


def telephone_event(key: str, end: bool, duration: int, volume: int = 10) -> bytes:
    """The 4-byte RFC 4733 §2.3 payload: event, E bit and volume, duration in timestamp units."""
    return struct.pack("!BBH", EVENTS.index(key.upper()), (0x80 if end else 0) | volume, duration)


def caller_stream(
    before: bytes, key: str, after: bytes, *, ssrc: int = 0x5EC0A11, seq: int = 1000, timestamp: int = 8000
) -> list[StreamPacket]:
    """The stream of a caller who says ``before`` (mu-law bytes), presses ``key``, says ``after``.

    One 20 ms slot per packet: slot n is sent at n x 20 ms. The key press starts at the slot after
    the speech and has the timestamp of that slot (RFC 4733 §2.5.1.2: every packet of an event
    carries its start); each packet's duration runs to the end of its own slot (§2.5.1.3). The end
    packets close the slot after the last update, and the speech after the key carries on with the
    timestamp at which the event ended, so the stream's clock never jumps.
    """
    packets: list[StreamPacket] = []
    slot = 0

    def send(payload_type: int, stamp: int, payload: bytes, marker: bool = False) -> None:
        rtp = rtp_packet(payload_type, seq + len(packets), stamp, ssrc, payload, marker)
        packets.append(StreamPacket(slot * FRAME / RATE, rtp))

    def speak(audio: bytes, first_marker: bool) -> None:
        nonlocal slot
        for start in range(0, len(audio) - FRAME + 1, FRAME):
            send(PCMU, timestamp + slot * FRAME, audio[start : start + FRAME], first_marker and start == 0)
            slot += 1

    speak(before, first_marker=True)  # RFC 3551 §4.1: the first packet of a talkspurt is marked
    pressed = timestamp + slot * FRAME
    for held in range(1, KEY_PACKETS + 1):
        send(TELEPHONE_EVENT, pressed, telephone_event(key, False, held * FRAME), marker=held == 1)
        slot += 1
    duration = (KEY_PACKETS + 1) * FRAME
    for _ in range(3):  # §2.5.1.4: the end packet three times, back to back
        send(TELEPHONE_EVENT, pressed, telephone_event(key, True, duration))
    slot += 1
    speak(after, first_marker=False)
    return packets


def write_pcap(
    packets: Iterable[StreamPacket],
    src: tuple[str, int] = ("127.0.0.1", 6000),
    dst: tuple[str, int] = ("127.0.0.1", 20000),
    start: float = 1_700_000_000.0,
) -> bytes:
    """The stream as a pcap. End packets sent back to back are 20 us apart, as when captured."""
    out = [pcap_file_header()]
    previous = -1.0
    for packet in packets:
        at = max(start + packet.at, previous + 20e-6)
        out.append(pcap_record(at, udp_frame(src, dst, packet.rtp)))
        previous = at
    return b"".join(out)


def fit(samples: npt.NDArray[np.int16], seconds: float) -> npt.NDArray[np.int16]:
    """Cut or zero-pad to exactly ``seconds`` at 8 kHz."""
    count = round(seconds * RATE)
    out = np.zeros(count, dtype=np.int16)
    out[: min(count, len(samples))] = samples[:count]
    return out


def render_speech(text: str) -> npt.NDArray[np.int16]:
    """``text`` spoken by espeak-ng, at 8 kHz (converted like any prompt file)."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)
        return load_wav(wav)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    speech = render_speech(SPEECH)
    split = round(SPEECH_BEFORE * RATE)
    before = ulaw_encode(fit(speech[:split], SPEECH_BEFORE))
    after = ulaw_encode(fit(speech[split:], SPEECH_AFTER))
    packets = caller_stream(before, KEY, after)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(write_pcap(packets))
    rms = float(np.sqrt(np.mean(speech[:split].astype(np.float64) ** 2)))
    print(f"{args.out}: {len(packets)} packets, {packets[-1].at:.2f} s; speech RMS {rms:.0f} of 32767")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The call engine: SIP endpoint + RTP sockets + the shared media clock, turned into Call objects.

Inbound INVITEs become ``Call`` objects handed to an application coroutine (the demo, a flow);
``dial`` places outbound calls on the same machinery (the test caller, callbacks, agents).
One task per call; a failing application ends its own call with BYE and a log line, nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ivr.call.call import Call, CallGone, CallInfo
from ivr.call.rtp_leg import RtpLeg
from ivr.logs import get_logger
from ivr.media.stream import MediaStream
from ivr.net.media_clock import MediaClock
from ivr.net.rtp_transport import RtpPoller, RtpPortAllocator, RtpSocket
from ivr.net.sip_endpoint import SipEndpoint
from ivr.net.workers import Forwarder, WorkerSet
from ivr.sip import events as ev
from ivr.sip.errors import NotAcceptableHere, SipParseError
from ivr.sip.message import SipRequest, new_call_id
from ivr.sip.negotiation import DTMF_PAYLOAD_TYPE, Negotiated, SdpNegotiation
from ivr.sip.ratelimit import RateLimiter
from ivr.sip.uri import parse_name_addr
from ivr.sip.useragent import UserAgent, UserAgentConfig

IncomingHandler = Callable[[Call], Awaitable[None]]
log = get_logger(component="engine")

# Test and lab aid: a caller may ask us to ring this long before answering (CANCEL tests).
ANSWER_DELAY_HEADER = "X-IVR-Answer-Delay"
MAX_ANSWER_DELAY = 30.0


class DialFailed(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


@dataclass
class EngineConfig:
    host: str = "127.0.0.1"
    port: int = 5060
    tcp: bool = False
    advertised_host: str | None = None  # address put into SDP/Contact when bound to 0.0.0.0
    rtp_low: int = 20000
    rtp_high: int = 30000
    user: str = "ivr"
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    # In-band (Goertzel) key detection costs about three times the rest of the receive path, so
    # by default ("auto") it runs only on calls that did not negotiate RFC 4733 telephone-event:
    # that is exactly the trunks that send keys as tones. "always" and "never" force it.
    inband_dtmf: str = "auto"
    max_calls: int | None = None
    max_calls_per_source: int | None = None  # calls one address may hold at once (None: any)
    workers: WorkerSet | None = None  # set in each worker process when running several
    # SIP datagrams per second (and burst) one source address may send; None: unlimited.
    source_rate: float | None = None
    source_burst: float = 100.0
    # A test aid: honour the X-IVR-Answer-Delay header (ring that many ms before answering), so
    # that tests can cancel a ringing call. Off unless asked for: any caller could otherwise hold
    # a leg and its RTP port ringing for MAX_ANSWER_DELAY seconds.
    answer_delay_header: bool = False


@dataclass
class _Leg:
    call_id: str
    rtp: RtpSocket
    media: MediaStream
    sdp: SdpNegotiation  # offer/answer state: session id and version, the media agreed on
    call: Call | None = None
    rtp_leg: RtpLeg | None = None
    clock_key: int | None = None
    task: asyncio.Task[None] | None = None
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Future[bytes] | None = None
    ended_reason: str | None = None  # set when the far end hung up before a Call was attached
    source: str | None = None  # the address an inbound INVITE came from: names in its SDP are its


class Engine:
    def __init__(self, config: EngineConfig, on_incoming: IncomingHandler | None = None) -> None:
        self.config = config
        self.on_incoming = on_incoming
        self.draining = False
        self.counters: dict[str, int] = {}
        self._legs: dict[str, _Leg] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._endpoint: SipEndpoint | None = None
        self._clock: MediaClock | None = None
        self._ports: RtpPortAllocator | None = None
        self._registration: asyncio.Future[ev.RegistrationChanged] | None = None
        self._forwarder: Forwarder | None = None
        self._refers: dict[str, asyncio.Future[int]] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> tuple[str, int]:
        c = self.config
        loop = asyncio.get_running_loop()
        # The clock reads every call's RTP socket in one pass per beat (see ivr.net.rtp_transport).
        poller = RtpPoller()
        self._clock = MediaClock(loop, receive=poller.drain)
        low, high = (
            (c.rtp_low, c.rtp_high) if c.workers is None else c.workers.rtp_slice(c.rtp_low, c.rtp_high)
        )
        self._ports = RtpPortAllocator(c.host, low, high, poller)
        ua_config = UserAgentConfig(
            host=self.advertised_host, port=c.port, user=c.user, max_calls=c.max_calls,
            max_calls_per_source=c.max_calls_per_source,
            call_id_factory=new_call_id if c.workers is None else c.workers.new_call_id,
        )  # fmt: skip
        self._endpoint = SipEndpoint(UserAgent(ua_config), self._on_event)
        if c.source_rate is not None:
            self._endpoint.limiter = RateLimiter(c.source_rate, c.source_burst)
        if c.workers is not None and c.workers.count > 1:
            self._forwarder = Forwarder(c.workers, self._endpoint.handle)
            await self._forwarder.start()
            self._endpoint.router = self._forwarder.route
        address = await self._endpoint.start(c.host, c.port, tcp=c.tcp, reuse_port=c.workers is not None)
        # Port 0 asks the OS for one: the core must put the real one into Via and Contact.
        ua_config.port = address[1]
        log.info("listening", host=address[0], port=address[1], tcp=c.tcp)
        return address

    @property
    def advertised_host(self) -> str:
        c = self.config
        if c.advertised_host:
            return c.advertised_host
        return "127.0.0.1" if c.host in ("0.0.0.0", "") else c.host

    @property
    def active_calls(self) -> int:
        return len(self._legs)

    @property
    def clock(self) -> MediaClock:
        assert self._clock is not None, "engine not started"
        return self._clock

    @property
    def endpoint(self) -> SipEndpoint:
        assert self._endpoint is not None, "engine not started"
        return self._endpoint

    async def stop(self, drain_timeout: float = 5.0) -> None:
        """Refuse new calls (503), let running ones finish for ``drain_timeout``, then end them."""
        self.draining = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=drain_timeout)
        for leg in list(self._legs.values()):
            if leg.call is not None:
                leg.call.hangup("server shutting down")
            else:
                self._hangup_leg(leg.call_id)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=1.0)
        if self._endpoint is not None:
            # Give the BYEs a moment on the wire before the socket closes.
            await asyncio.sleep(0.05)
            self._endpoint.close()
        if self._forwarder is not None:
            self._forwarder.close()
        if self._ports is not None:
            self._ports.poller.close()

    async def register(
        self, registrar: tuple[str, int], user: str, domain: str, password: str, expires: int = 300
    ) -> ev.RegistrationChanged:
        self._registration = asyncio.get_running_loop().create_future()
        self._act(lambda now: self.endpoint.ua.register(registrar, user, domain, password, expires, now))
        return await asyncio.wait_for(self._registration, 35)

    # -- outbound ---------------------------------------------------------------------------------

    async def dial(
        self,
        target: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        proxy: tuple[str, int] | None = None,
        from_user: str | None = None,
        record: bool = False,
        timeout: float = 40.0,
        telephone_events: bool = True,
    ) -> Call:
        """Call ``target``; returns the answered Call, or raises DialFailed.

        ``telephone_events=False`` offers no RFC 4733 events, like a trunk that sends keys as
        tones in the audio (they are then sent in-band).
        """
        rtp = self._open_rtp()
        sdp = self._new_negotiation(telephone_events=telephone_events)
        dtmf_pt = sdp.dtmf_payload_type
        # Like a phone, an outbound leg sends silence when it has nothing to say: continuous
        # RTP keeps NAT bindings open and lets the far end's voice detection learn the line.
        media = MediaStream(
            "PCMU", dtmf_pt, None, record=record, comfort_silence=True,
            inband_dtmf=self.config.inband_dtmf == "always",
        )  # fmt: skip
        leg = _Leg("", rtp, media, sdp)
        offer = sdp.make_offer(self.advertised_host, rtp.port)
        loop = asyncio.get_running_loop()
        leg.answered = loop.create_future()
        try:
            call_id = str(
                self._act(
                    lambda now: self.endpoint.ua.invite(
                        target, offer, now, from_user=from_user, headers=headers, proxy=proxy
                    )
                )
            )
        except SipParseError as exc:
            rtp.close()
            raise DialFailed(400, f"bad target {target!r}: {exc.reason}") from exc
        leg.call_id = call_id
        self._legs[call_id] = leg
        try:
            answer = await asyncio.wait_for(asyncio.shield(leg.answered), timeout)
        except TimeoutError:
            self._act(lambda now: self.endpoint.ua.hangup(call_id, now))
            self._release(leg)
            raise DialFailed(408, "no answer") from None
        except DialFailed:
            self._release(leg)
            raise
        try:
            negotiated = sdp.receive_answer(answer)
        except NotAcceptableHere:
            self._act(lambda now: self.endpoint.ua.hangup(call_id, now))
            self._release(leg)
            raise DialFailed(488, "answer has no usable audio") from None
        self._apply(leg, negotiated)
        info = CallInfo(
            call_id, "outbound", self.config.user, target, (negotiated.remote_address, negotiated.remote_port)
        )
        return self._attach_call(leg, info)

    async def refer(self, call: Call, target: str, timeout: float = 30.0) -> int:
        """Blind transfer (RFC 3515): ask the caller's side (a PBX) to call ``target``.

        Returns the final status the transferee reported (200: the target answered; 408 when no
        report came in time). On success our leg is ended, as RFC 5589 §6.1 recommends.
        """
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._refers[call.call_id] = waiter
        try:
            sent = self._act(lambda now: self.endpoint.ua.refer(call.call_id, target, now))
            if not sent:
                return 481
            try:
                status = await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                return 408
        finally:
            self._refers.pop(call.call_id, None)
        if 200 <= status < 300 and call.active:
            call.hangup("transferred")
        return status

    # -- SIP events -------------------------------------------------------------------------------

    def _on_event(self, event: object) -> None:
        name = type(event).__name__
        self.counters[name] = self.counters.get(name, 0) + 1
        match event:
            case ev.IncomingCall():
                self._spawn(self._accept(event))
            case ev.CallCancelled(call_id=call_id):
                self._end_leg(call_id, "cancelled")
            case ev.CallConfirmed(call_id=call_id):
                leg = self._legs.get(call_id)
                if leg is not None:
                    leg.confirmed.set()
            case ev.ReInviteReceived():
                self._on_reinvite(event)
            case ev.CallEnded(call_id=call_id, reason=reason):
                self._end_leg(call_id, reason)
            case ev.OutgoingAnswered(call_id=call_id, answer_sdp=sdp):
                leg = self._legs.get(call_id)
                if leg is not None and leg.answered is not None and not leg.answered.done():
                    leg.answered.set_result(sdp)
            case ev.OutgoingFailed(call_id=call_id, status=status, reason=reason):
                leg = self._legs.get(call_id)
                if leg is not None and leg.answered is not None and not leg.answered.done():
                    leg.answered.set_exception(DialFailed(status, reason))
            case ev.ReferResult(call_id=call_id, status=status, final=final):
                waiter = self._refers.get(call_id)
                if waiter is not None and final and not waiter.done():
                    waiter.set_result(status)
            case ev.RegistrationChanged():
                log.info("registration", aor=event.aor, registered=event.registered, status=event.status)
                if self._registration is not None and not self._registration.done():
                    self._registration.set_result(event)
            case ev.MessageDropped(reason=reason):
                log.debug("sip message dropped", reason=reason)
            case _:
                pass

    async def _accept(self, event: ev.IncomingCall) -> None:
        call_id = event.call_id
        ua = self.endpoint.ua
        if self.draining or self.on_incoming is None:
            self._act(lambda now: ua.reject(call_id, 503, now, "Service Unavailable"))
            return
        sdp = self._new_negotiation()
        try:
            negotiated = sdp.receive_offer(event.offer_sdp)  # None: no offer, we offer in the 200
        except NotAcceptableHere as exc:
            status, reason = exc.status, exc.reason
            self._act(lambda now: ua.reject(call_id, status, now, reason))
            return
        try:
            rtp = self._open_rtp()
        except RuntimeError:
            self._act(lambda now: ua.reject(call_id, 503, now, "No media ports"))
            return
        media = MediaStream("PCMU", DTMF_PAYLOAD_TYPE, None, inband_dtmf=self._wants_inband(negotiated))
        leg = _Leg(call_id, rtp, media, sdp, task=asyncio.current_task(), source=event.remote_addr[0])
        self._legs[call_id] = leg
        if negotiated is not None:
            self._apply(leg, negotiated)
        delay = _answer_delay(event.request) if self.config.answer_delay_header else 0.0
        if delay > 0:
            self._act(lambda now: ua.send_provisional(call_id, 180, now))
            await asyncio.sleep(delay)
            if call_id not in self._legs:
                return  # cancelled while ringing
        answer = sdp.make_answer(self.advertised_host, rtp.port)
        self._act(lambda now: ua.answer(call_id, answer, now))
        info = CallInfo(
            call_id,
            "inbound",
            _user_of(event.request.headers.get("From")),
            _user_of(event.request.headers.get("To")),
            event.remote_addr,
            {name: value for name, value in event.request.headers.items() if name.lower().startswith("x-")},
        )
        call = self._attach_call(leg, info)
        assert self.on_incoming is not None
        await self._run_application(call)

    async def _run_application(self, call: Call) -> None:
        assert self.on_incoming is not None
        try:
            await self.on_incoming(call)
        except asyncio.CancelledError:
            raise
        except CallGone:
            pass  # the caller hung up while the application was talking or listening
        except Exception:
            call.log.exception("application failed; ending the call")
        finally:
            if call.active:
                call.hangup("application finished")

    def _on_reinvite(self, event: ev.ReInviteReceived) -> None:
        leg = self._legs.get(event.call_id)
        ua = self.endpoint.ua
        negotiated: Negotiated | None = None
        if leg is not None:
            with contextlib.suppress(NotAcceptableHere):
                negotiated = leg.sdp.receive_offer(event.offer_sdp)
        if leg is None or negotiated is None:
            # RFC 3261 §14.2: a declined re-INVITE leaves the session as it was.
            self._act(lambda now: ua.answer_reinvite(event.call_id, None, now))
            return
        self._apply(leg, negotiated)
        answer = leg.sdp.make_answer(self.advertised_host, leg.rtp.port)
        self._act(lambda now: ua.answer_reinvite(event.call_id, answer, now))
        log.info(
            "re-INVITE accepted",
            call_id=event.call_id,
            codec=negotiated.codec.name,
            direction=negotiated.direction,
        )

    # -- helpers ----------------------------------------------------------------------------------

    def _act(self, action: Callable[[float], object]) -> object:
        return self.endpoint.act(action)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _open_rtp(self) -> RtpSocket:
        assert self._ports is not None
        return self._ports.open()

    def _new_negotiation(self, *, telephone_events: bool = True) -> SdpNegotiation:
        # A random o= session id (RFC 4566 §5.2 suggests an NTP timestamp; any unique number does).
        return SdpNegotiation(random.getrandbits(31), self.config.codecs, telephone_events=telephone_events)

    def _wants_inband(self, negotiated: Negotiated | None) -> bool:
        mode = self.config.inband_dtmf
        if mode == "auto":
            return negotiated is None or negotiated.dtmf_payload_type is None
        return mode == "always"

    def _apply(self, leg: _Leg, negotiated: Negotiated) -> None:
        given = (negotiated.remote_address, negotiated.remote_port)
        # An SDP may name a host (RFC 4566 c=): looked up off the loop, never per packet.
        remote = self.endpoint.resolver.address_now(given)
        codec, dtmf, direction = negotiated.codec.name, negotiated.dtmf_payload_type, negotiated.direction
        media = leg.media
        media.set_remote(remote, codec, dtmf, direction)
        if remote is None:

            def resolved(address: tuple[str, int]) -> None:
                if media.remote is None:  # unless a re-INVITE moved the media meanwhile
                    media.set_remote(address, media.codec, media.dtmf_pt, media.direction)

            self.endpoint.resolver.when_resolved(given, resolved, source=leg.source)

    def _attach_call(self, leg: _Leg, info: CallInfo) -> Call:
        # By call id, not by leg: a closure over the leg would tie Call and _Leg into a reference
        # cycle, and every cycle per call is work for the full garbage collection that pauses the
        # media clock for tens of milliseconds at a few hundred calls.
        call = Call(info, leg.media, functools.partial(self._hangup_leg, leg.call_id))
        leg.call = call
        if leg.ended_reason is not None:
            # Answered and hung up before we got here (a BYE right behind the 200 OK).
            call.on_remote_ended(leg.ended_reason)
            return call
        leg.rtp_leg = RtpLeg(leg.media, leg.rtp, call)  # the socket's handler, the stream's listener
        leg.clock_key = self.clock.add(leg.rtp_leg.tick)
        call.log.info("call up", direction=info.direction, caller=info.caller, called=info.called)
        return call

    def _hangup_leg(self, call_id: str) -> None:
        leg = self._legs.get(call_id)
        self._act(lambda now: self.endpoint.ua.hangup(call_id, now))
        if leg is not None:
            self._release(leg)

    def _end_leg(self, call_id: str, reason: str) -> None:
        leg = self._legs.get(call_id)
        if leg is None:
            return
        leg.ended_reason = reason
        if leg.call is not None:
            leg.call.on_remote_ended(reason)
        if leg.answered is not None and not leg.answered.done():
            leg.answered.set_exception(DialFailed(487, reason))
        if leg.task is not None and not leg.task.done() and leg.call is None:
            leg.task.cancel()  # still ringing (answer delay): nothing to run any more
        self._release(leg)

    def _release(self, leg: _Leg) -> None:
        self._legs.pop(leg.call_id, None)
        if leg.clock_key is not None:
            self.clock.remove(leg.clock_key)
            leg.clock_key = None
        if leg.rtp_leg is not None:
            leg.rtp_leg.close()  # it holds the socket and the call, which holds the stream
        leg.rtp.close()


def _answer_delay(request: SipRequest) -> float:
    value = request.headers.get(ANSWER_DELAY_HEADER)
    if value is None:
        return 0.0
    with contextlib.suppress(ValueError):
        return min(max(int(value) / 1000.0, 0.0), MAX_ANSWER_DELAY)
    return 0.0


def _user_of(header: str | None) -> str:
    if not header:
        return ""
    try:
        uri = parse_name_addr(header).uri
    except SipParseError:
        return ""
    return uri.user or uri.host

"""The bridge: ledd's WATCH events out to MQTT, MQTT commands in to ledd, in one poll loop.

One thread, one ``poll`` over three descriptors: the watcher FIFO (ledd's
events), the broker socket (paho driven through :class:`ledd.mqtt.link.Link`)
and a self-pipe that signals write to. Nothing polls ledd or the broker on a
timer: an event is published the moment it is read (well under 50 ms), and
idle the loop sleeps until the next MQTT keepalive ping.

Lifecycle of the two sides, independent of each other:

- ledd: watched → on EOF (ledd stopped, crashed or dropped us) the
  availability topic turns ``offline`` and the bridge watches again with
  backoff; the first event of a new watch is the whole state, so it turns
  ``online`` with fresh state.
- broker: connected → on loss, reconnect with doubling backoff and one log
  line per attempt; on every CONNACK the bridge subscribes, then republishes
  availability, every retained state topic and the discovery configs. paho
  never replays old commands: clean session, and retained command messages
  the broker replays on subscribing are ignored (a command is an action,
  not a state). A command published while the bridge is connected runs,
  retained or not: the broker delivers it live, without the retain flag.

Commands pass a token bucket (``rate_limit``/s, ``rate_burst``); beyond it
they are dropped and counted, with one log line per few seconds and a final
count (:class:`Burst`), so a flood cannot starve the dashboard's access to
ledd nor flood the journal; invalid commands are logged the same way.
"""

import collections
import json
import logging
import os
import select
import signal
import time

from ledd import __version__, defaults
from ledd.client import Client
from ledd.errors import CommandError, DaemonDown, DaemonTimeout, LeddError
from ledd.mqtt import discovery
from ledd.mqtt.link import PAHO_VERSION, Link
from ledd.mqtt.topics import BadCommand, Topics, all_command, led_command, state_messages

log = logging.getLogger("ledd-mqtt")


class Backoff:
    """Doubling delays between ``first`` and ``cap`` seconds; :meth:`reset` after a success."""

    def __init__(self, first, cap):
        self.first, self.cap = first, cap
        self.delay = first

    def next(self):
        delay = self.delay
        self.delay = min(self.delay * 2, self.cap)
        return delay

    def reset(self):
        self.delay = self.first


class Burst:
    """Logs a run of like events (dropped or invalid commands) in a few lines, not one each.

    The first event of a run is logged at once, in full; the next ones are
    counted, and every ``interval`` seconds (``MQTT_RATE_LOG_S``) the count
    since the last line is logged, with the run's total. A tick that finds
    nothing new ends the run with its final total. The bridge calls
    :meth:`tick` when :meth:`deadline` passes, so the last count is logged
    even when nothing more arrives.
    """

    def __init__(self, what, interval=defaults.MQTT_RATE_LOG_S, clock=time.monotonic):
        self.what, self.interval, self.clock = what, interval, clock
        self.total = 0          # events of this run
        self.pending = 0        # events not yet counted in a log line
        self.logged_at = None   # start of the current log interval; None: no run under way

    def hit(self, first_line, *args):
        """One more event; ``first_line % args`` is logged if it starts a run."""
        self.total += 1
        if self.logged_at is None:
            log.warning(first_line, *args)
            self.logged_at = self.clock()
        else:
            self.pending += 1
            self.tick()

    def deadline(self):
        """When :meth:`tick` has something to log (time.monotonic()), or None."""
        return None if self.logged_at is None else self.logged_at + self.interval

    def tick(self):
        now = self.clock()
        if self.logged_at is None or now < self.logged_at + self.interval:
            return
        if self.pending:
            log.warning("%s: %d more in the last %.0f s (%d so far)", self.what, self.pending,
                        now - self.logged_at, self.total)
            self.pending = 0
            self.logged_at = now
        else:
            log.warning("%s: over, %d in all", self.what, self.total)
            self.total = 0
            self.logged_at = None


class RateLimit:
    """A token bucket: ``rate`` commands a second, up to ``burst`` at once; drops are counted in :attr:`drops`."""

    def __init__(self, rate, burst, clock=time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.stamp = clock()
        self.dropped = 0
        self.drops = Burst("rate limit: dropped commands", clock=clock)

    def allow(self):
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.dropped += 1
        self.drops.hit("rate limit: more than %d commands/s (burst %d): dropping commands; the count follows",
                       self.rate, self.burst)
        return False


class Bridge:
    """Run with :meth:`run`; :meth:`stop` (or SIGTERM/SIGINT) ends it cleanly."""

    def __init__(self, cfg, password=None, runtime_dir=None):
        self.cfg = cfg
        self.topics = Topics(cfg.base_topic)
        self.ledd = Client(runtime_dir or cfg.runtime_dir)
        self.qos = cfg.qos
        self.link = Link(cfg.effective_client_id(), cfg.keepalive, self._on_connect, self._on_disconnect,
                         self._on_message)
        if cfg.tls:
            self.link.set_tls(cfg.ca_file, cfg.cert_file, cfg.key_file)
        self.link.set_credentials(cfg.username, password)
        self.link.set_will(self.topics.availability, "offline", self.qos)
        self.broker_name = "%s://%s:%d" % ("mqtts" if cfg.tls else "mqtt", cfg.host, cfg.port)
        self.ha_status = "%s/%s" % (cfg.discovery_prefix, defaults.MQTT_HA_STATUS)
        self.config_filter = discovery.config_filter(cfg.discovery_prefix, cfg.device_id)

        self.watcher = None
        self.state = None          # the last state ledd sent (dict), None while ledd is down
        self.device = None         # HA device block (needs ledd's HELLO)
        self.published = {}        # topic -> payload the broker holds from us (this connection)
        self.announced = {}        # discovery topic -> config JSON (this connection)
        self.seen_configs = set()  # retained discovery configs of this device found on the broker
        self.seen_states = set()   # retained state topics under our base found on the broker
        self.commands = collections.deque()
        self.limiter = RateLimit(cfg.rate_limit, cfg.rate_burst)
        self.invalid = Burst("invalid commands ignored")
        self.mqtt_backoff = Backoff(*defaults.MQTT_BACKOFF_S)
        self.ledd_backoff = Backoff(*defaults.MQTT_LEDD_BACKOFF_S)
        self.mqtt_retry_at = 0.0
        self.ledd_retry_at = 0.0
        self.connecting = False
        self.refused = None        # CONNACK's reason when the broker refused us
        self.stopping = False
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.ledd_was_down_logged = False

    # -- the loop -------------------------------------------------------------
    def stop(self, *_):
        self.stopping = True
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def install_signal_handlers(self):
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self):
        log.info("ledd-mqtt %s (paho-mqtt %s): ledd at %s, broker %s, topics under %s/",
                 __version__, PAHO_VERSION, self.ledd.runtime_dir, self.broker_name, self.cfg.base_topic)
        try:
            while not self.stopping:
                self._step()
        finally:
            self._shutdown()
        return 0

    def _step(self):
        now = time.monotonic()
        if self.watcher is None and now >= self.ledd_retry_at:
            self._watch()
        if self.link.fileno() is None and not self.connecting and now >= self.mqtt_retry_at:
            self._connect()
        self._run_commands()
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        if self.watcher is not None:
            poller.register(self.watcher.fileno(), select.POLLIN)
        sock = self.link.fileno()
        if sock is not None:
            poller.register(sock, select.POLLIN | (select.POLLOUT if self.link.want_write() else 0))
        deadlines = [t for t in (self.link.next_deadline(),
                                 self.ledd_retry_at if self.watcher is None else None,
                                 self.mqtt_retry_at if sock is None else None,
                                 self.limiter.drops.deadline(), self.invalid.deadline()) if t is not None]
        timeout = None if not deadlines else max(0, (min(deadlines) - time.monotonic()) * 1000)
        for fd, mask in poller.poll(timeout):
            if fd == self._wake_r:
                self._drain_wake()
            elif self.watcher is not None and fd == self.watcher.fileno():
                self._read_events()
            elif fd == sock and self.link.fileno() == sock:
                if mask & (select.POLLIN | select.POLLERR | select.POLLHUP):
                    self.link.read()
                if mask & select.POLLOUT and self.link.fileno() is not None:
                    self.link.write()
        self.link.misc()
        self.limiter.drops.tick()
        self.invalid.tick()
        if self.link.fileno() is None and self.connecting:
            # The socket closed before CONNACK (refused, reset): on_disconnect may not have run.
            self.connecting = False
            self._schedule_reconnect("connection closed during the handshake")

    def _drain_wake(self):
        try:
            while os.read(self._wake_r, 64):
                pass
        except BlockingIOError:
            pass

    def _shutdown(self):
        if self.link.connected:
            self.link.publish(self.topics.availability, "offline", self.qos, True)
            self.link.disconnect()
            log.info("stopped: availability offline, disconnected from %s", self.broker_name)
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    # -- ledd side ------------------------------------------------------------
    def _watch(self):
        try:
            hello = self.ledd.hello()
            self.watcher = self.ledd.watch()
        except LeddError as err:
            delay = self.ledd_backoff.next()
            self.ledd_retry_at = time.monotonic() + delay
            if not self.ledd_was_down_logged:
                log.warning("ledd unreachable (%s); watching again every %.1f-%.0f s", err,
                            defaults.MQTT_LEDD_BACKOFF_S[0], defaults.MQTT_LEDD_BACKOFF_S[1])
                self.ledd_was_down_logged = True
            return
        model, hw_version = discovery.board_model(hello.get("backend"))
        self.device = discovery.device(self.cfg, model, hw_version, "ledd %s" % hello.get("version", "?"))
        self.ledd_backoff.reset()
        self.ledd_was_down_logged = False
        log.info("watching ledd %s (%s backend)", hello.get("version", "?"), hello.get("backend", "?"))
        self._read_events()

    def _ledd_down(self, why):
        log.warning("ledd went away (%s): availability offline, watching again", why)
        if self.watcher is not None:
            self.watcher.close()
            self.watcher = None
        self.state = None
        self.commands.clear()
        self.ledd_retry_at = time.monotonic() + self.ledd_backoff.next()
        self.ledd_was_down_logged = True
        self._publish(self.topics.availability, "offline")

    def _read_events(self):
        while self.watcher is not None:
            try:
                raw = self.watcher.next_event(0)
            except LeddError as err:
                self._ledd_down(err)
                return
            if raw is None:
                return
            try:
                state = json.loads(raw)
            except ValueError:
                log.error("ledd sent an event that is not JSON: %r", raw[:80])
                continue
            first = self.state is None
            self.state = state
            self._publish_state(state)
            if first:
                self._publish(self.topics.availability, "online")
            self._announce()  # a diff: publishes only when ledd's wiring changed (reload)

    # -- broker side ----------------------------------------------------------
    def _connect(self):
        try:
            self.link.connect(self.cfg.host, self.cfg.port)
        except (OSError, ValueError) as err:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            self._schedule_reconnect(err)
            return
        self.connecting = True

    def _schedule_reconnect(self, why):
        delay = self.mqtt_backoff.next()
        self.mqtt_retry_at = time.monotonic() + delay
        log.warning("broker %s: %s; reconnecting in %.0f s", self.broker_name, str(why).rstrip("."), delay)

    def _on_connect(self, ok, reason):
        self.connecting = False
        if not ok:
            # paho closes the socket and then calls on_disconnect, which logs this and schedules the retry.
            self.refused = reason
            return
        self.mqtt_backoff.reset()
        log.info("connected to %s", self.broker_name)
        self.published.clear()
        self.announced.clear()
        self.seen_configs.clear()
        self.seen_states.clear()
        # The state filters find retained topics of LEDs and buttons removed while the bridge was away.
        self.link.subscribe([self.topics.led_set_filter, self.topics.all_set, self.ha_status, self.config_filter]
                            + self.topics.state_filters(), self.qos)
        self._publish(self.topics.availability, "online" if self.state is not None else "offline")
        if self.state is not None:
            self._publish_state(self.state)
            self._announce()

    def _on_disconnect(self, reason, was_connected):
        self.connecting = False
        if self.stopping:
            return
        if self.refused:
            why = "refused the connection (%s)" % self.refused
        elif was_connected:
            why = "connection lost" if reason in ("Unspecified error", "The connection was lost.") else \
                "connection lost (%s)" % reason
        else:
            why = reason
        self.refused = None
        self._schedule_reconnect(why)

    def _publish(self, topic, payload, force=False):
        """Publish a retained state; skipped when the broker already holds it from us."""
        if not force and self.published.get(topic) == payload:
            return
        if self.link.publish(topic, payload, self.qos, True):
            self.published[topic] = payload

    def _publish_state(self, state):
        wanted = state_messages(self.topics, state)
        for topic, payload in wanted.items():
            self._publish(topic, payload)
        # An LED or button that left ledd's config: clear its retained topics, those published
        # on this connection and those found on the broker (left from before a stop of the bridge).
        for topic in [t for t in self.published if t not in wanted and t != self.topics.availability]:
            if self.link.publish(topic, "", self.qos, True):
                del self.published[topic]
        self._clear_stale_states(wanted)

    def _clear_stale_states(self, wanted):
        for topic in sorted(self.seen_states - set(wanted)):
            log.info("clearing %s: no such LED or button in ledd's config any more", topic)
            if self.link.publish(topic, "", self.qos, True):
                self.seen_states.discard(topic)

    def _announce(self, force=False):
        """Publish the discovery configs that changed; clear the ones of this device no longer wanted."""
        if self.state is None or not self.link.connected:
            return
        wanted = {}
        if self.cfg.discovery:
            origin = {"name": "ledd-mqtt", "sw_version": __version__}
            wanted = discovery.configs(self.cfg, self.topics, self.state, self.device, origin)
        for topic, payload in wanted.items():
            if force or self.announced.get(topic) != payload:
                if self.link.publish(topic, payload, self.qos, True):
                    self.announced[topic] = payload
        for topic in (set(self.announced) | self.seen_configs) - set(wanted):
            log.info("removing discovery config %s", topic)
            self.link.publish(topic, "", self.qos, True)
            self.announced.pop(topic, None)
            self.seen_configs.discard(topic)

    def _on_message(self, topic, payload, retained):
        if topic == self.ha_status:
            if payload.strip().lower() == b"online" and not retained:
                log.info("Home Assistant is online: announcing again")
                self._announce(force=True)
            return
        if topic.startswith(self.cfg.discovery_prefix + "/") and topic.endswith("/config"):
            if retained and payload:
                if topic not in self.seen_configs:
                    self._check_light_schema(topic, payload)
                self.seen_configs.add(topic)
                if topic not in self.announced:
                    self._announce()
            return
        if self.topics.is_state_topic(topic):
            # Our own state topics: the retained ones the broker holds, and the echo of what we publish.
            if retained and payload:
                self.seen_states.add(topic)
                if self.state is not None:
                    self._clear_stale_states(state_messages(self.topics, self.state))
            return
        if not payload:
            # How MQTT clears a retained message (mosquitto_pub -r -n): the broker passes the empty
            # message on to live subscribers. Never a command, and nothing to warn about.
            log.debug("empty message on %s (a retained command cleared)", topic[:120])
            return
        if retained:
            # Replayed by the broker as the bridge subscribed: published before, maybe long ago.
            log.warning("ignored a retained command on %s: the broker replayed it on (re)connect, a stale "
                        "action (clear it with mosquitto_pub -r -n -t '%s')", topic, topic)
            return
        try:
            command = self._all_command(payload) if topic == self.topics.all_set else self._led_command(topic, payload)
        except BadCommand as err:
            self.invalid.hit("ignored command on %s: %s (payload %r); further ones are counted",
                             topic[:120], err, payload[:60])
            return
        if not self.limiter.allow():
            return
        self.commands.append(command)

    def _check_light_schema(self, topic, payload):
        """Say so when a light was announced before with another schema (a bridge without brightness).

        Home Assistant applies a changed discovery config to the entity it has,
        built for the old schema: it gets the dimmable JSON light only when its
        MQTT integration is reloaded (or it restarts). Nothing else can tell the user.
        """
        if self.cfg.led_component != "light" or not self.cfg.discovery or "/light/" not in topic:
            return
        try:
            schema = json.loads(payload).get("schema", "default")
        except (ValueError, AttributeError):
            return
        if schema != discovery.LIGHT_SCHEMA:
            log.warning("%s was announced with the %s light schema (by an older ledd-mqtt); Home Assistant "
                        "shows it as a dimmable light once its MQTT integration is reloaded or it restarts",
                        topic, schema)

    # One handler per kind of command topic; each makes its own kind of command.
    @staticmethod
    def _all_command(payload):
        """``<base>/all/set``: every LED."""
        return all_command(payload)

    def _led_command(self, topic, payload):
        """``<base>/led/<name>/set``: that LED, whatever its name."""
        name = self.topics.led_of_set_topic(topic)
        if name is None:
            raise BadCommand("not a command topic")
        if self.state is not None and name not in [led["name"] for led in self.state.get("leds", [])]:
            raise BadCommand("no LED named %r" % name[:40])
        return led_command(name, payload)

    def _run_commands(self):
        while self.commands and self.watcher is not None:
            command = self.commands.popleft()
            try:
                command.send(self.ledd)
            except CommandError as err:
                log.warning("ledd refused %s: %s", command, err)
            except DaemonTimeout as err:
                log.warning("ledd did not answer %s: %s", command, err)
            except DaemonDown as err:
                self._ledd_down(err)
        if self.watcher is None and self.commands:
            log.warning("ledd is down: dropped %d command(s)", len(self.commands))
            self.commands.clear()


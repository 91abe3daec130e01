#!/usr/bin/env bash
# make run: the box in the foreground with a desktop config, on the MIDI system this machine has.
#   ALSA sequencer there (/dev/snd/seq): the box uses it (or JACK, when ALSA cannot be opened).
#   No ALSA sequencer (a container, a headless box, snd-seq not loaded): the JACK server that
#   runs is used; if none runs, one is started (jackd, dummy driver, stopped again with the
#   box), after installing jackd2 where root; without root, one line says what to install.
# The box logs which ports to connect and the command that does it.
# Environment: VENV (.venv), CONFIG (examples/desktop.yaml), SEQ_DEVICE (/dev/snd/seq),
# JACK_DEFAULT_SERVER (the JACK server's name, "default"), STATE_DIRECTORY (desktop.yaml's state.dir,
# ../out/state from the config's directory: where the box finds the last config that loaded when
# the file has a mistake).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$here/.venv}
CONFIG=${CONFIG:-$here/examples/desktop.yaml}
if [ -z "${STATE_DIRECTORY:-}" ] && config_dir=$(CDPATH='' cd -- "$(dirname -- "$CONFIG")" 2>/dev/null && pwd); then
  export STATE_DIRECTORY="$config_dir/../out/state"   # the box keeps, and finds, the last good config there
fi
SEQ_DEVICE=${SEQ_DEVICE:-/dev/snd/seq}
say() { echo "groovebox: $*"; }
jack_answers() { command -v jack_wait >/dev/null 2>&1 && [ "$(jack_wait -c 2>/dev/null)" = "running" ]; }

args=()
jackd_pid=""
log=""
jack_ran=""
stop_jackd() {
  if [ -n "$jackd_pid" ] && kill -0 "$jackd_pid" 2>/dev/null; then
    # The box leaves its JACK clients to its exit; jackd takes them away a cycle or so later.
    # Stopped in the middle of that, jackd exits without unregistering and keeps one of
    # JACK's 8 server slots. So wait (at most 5 s) until the box's ports are gone.
    for _ in $(seq 50); do
      jack_lsp 2>/dev/null | grep -q '^groovebox' || break
      sleep 0.1
    done
    kill -TERM "$jackd_pid" 2>/dev/null          # SIGTERM: a killed jackd keeps its registry slot
    wait "$jackd_pid" 2>/dev/null
    # the log of a server that ran under a box that stopped cleanly goes; a failure's stays to be read
    [ -n "$jack_ran" ] && [ "${code:-1}" -eq 0 ] && rm -f "$log"
  fi
}
trap stop_jackd EXIT

if [ -e "$SEQ_DEVICE" ]; then
  say "ALSA sequencer found; the box's ports: groovebox:in and groovebox:out (aconnect -l)"
else
  args=(--midi-api jack)
  if jack_answers; then
    say "no ALSA sequencer ($SEQ_DEVICE): using the JACK server that runs"
  else
    if ! command -v jackd >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
      say "no ALSA sequencer ($SEQ_DEVICE) and no JACK: installing jackd2"
      bash "$here/scripts/apt-install.sh" jackd2:jackd
    fi
    if ! command -v jackd >/dev/null 2>&1; then
      say "no ALSA sequencer ($SEQ_DEVICE) and no JACK server: run 'sudo apt-get install jackd2' (or 'sudo modprobe snd-seq' where ALSA is there), then 'make run' again" >&2
      exit 1
    fi
    server=${JACK_DEFAULT_SERVER:-default}
    log=$(mktemp -t groovebox-jackd.XXXXXX.log)
    say "no ALSA sequencer ($SEQ_DEVICE): starting a JACK server (jackd -d dummy, name $server, log $log); it stops with the box"
    say "the dummy driver has no sound card: MIDI flows, but a soft synth on this server is not heard (to hear one, run a JACK server on your sound card first, or load the ALSA sequencer: sudo modprobe snd-seq)"
    for mode in "-R" "--no-realtime"; do
      # its own session: Ctrl-C stops the box first, which then sends its last note-offs
      # -S (synchronous): a cycle ends when every client is done, so a late client makes the
      # cycle late rather than lose its MIDI for it (python -m benchmarks.jack_loss)
      setsid jackd "$mode" --name "$server" -S -d dummy -r 48000 -p 256 >"$log" 2>&1 </dev/null &
      jackd_pid=$!
      for _ in $(seq 100); do
        jack_answers && break
        kill -0 "$jackd_pid" 2>/dev/null || break
        sleep 0.2
      done
      jack_answers && break
      stop_jackd
      jackd_pid=""
    done
    if [ -z "$jackd_pid" ]; then
      say "the JACK server did not start: $(tail -n 3 "$log" | tr '\n' ' ')" >&2
      exit 1
    fi
    jack_ran=1
    say "JACK server '$server' running; connect with jack_connect, look with jack_lsp -c"
  fi
fi
say "playing with $CONFIG; Ctrl-C stops it; from another terminal: $VENV/bin/groovebox monitor (or status | freeze | clear | resample)"
"$VENV/bin/groovebox" run --config "$CONFIG" "${args[@]}" &
box=$!
say "the box runs as pid $box: after you edit $CONFIG, kill -HUP $box reloads it"
trap 'kill -INT "$box" 2>/dev/null' INT TERM
wait "$box"; code=$?
while kill -0 "$box" 2>/dev/null; do wait "$box"; code=$?; done
exit "$code"

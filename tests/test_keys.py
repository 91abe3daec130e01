"""Which keys sound: held down, or let go under the sustain pedal."""
import mido

from appliance.core.keys import HELD_FOR, Keys


def cc(control: int, value: int, channel: int = 0) -> mido.Message:
    return mido.Message("control_change", control=control, value=value, channel=channel)


def off(note: int, channel: int = 0) -> mido.Message:
    return mido.Message("note_off", note=note, channel=channel)


def pedal_down_with(*notes: int) -> Keys:
    """The pedal down on channel 1 (0), then these keys struck at step 0."""
    keys = Keys()
    keys.hear(cc(64, 127))
    for note in notes:
        keys.press(0, note, 0.0)
    return keys


def test_a_key_let_go_under_the_pedal_sounds_until_the_pedal_lifts() -> None:
    keys = pedal_down_with(60)
    assert keys.held(10.0)
    keys.hear(off(60))
    assert keys.sounding(10.0) and not keys.held(10.0), "it rings on; the hands let it go"
    keys.hear(cc(64, 20))
    assert not keys.sounding(10.0)


def test_a_key_let_go_without_the_pedal_or_under_another_channels_is_silent() -> None:
    keys = Keys()
    keys.hear(cc(64, 127, channel=1))
    keys.press(0, 60, 0.0)
    assert keys.sounding(1.0)
    keys.hear(off(60))
    assert not keys.sounding(1.0)


def test_all_notes_off_and_a_reset_let_everything_go() -> None:
    keys = pedal_down_with(60, 64)
    keys.hear(off(64))
    keys.hear(cc(123, 0))
    assert not keys.sounding(1.0)
    keys.press(0, 67, 2.0)
    keys.hear(cc(121, 0))         # reset all controllers: the pedal is up, the key still down
    keys.hear(off(67))
    assert not keys.sounding(3.0)


def test_a_stuck_key_or_pedal_no_longer_sounds_after_held_for() -> None:
    keys = pedal_down_with(60, 62)
    keys.hear(off(62))
    assert keys.sounding(HELD_FOR - 1.0)
    assert not keys.sounding(HELD_FOR + 1.0)
    keys.press(0, 62, HELD_FOR)   # struck again: it sounds from there
    assert keys.sounding(HELD_FOR + 1.0)


def test_the_last_chord_rings_until_its_last_key_or_the_pedal_lets_go() -> None:
    """A chord struck over half a step rings to where its last key is let go, or the pedal lifts
    after; a key held from before it does not make it ring on; a new chord starts again."""
    keys = Keys()
    assert keys.last_rang_to(5.0) is None
    keys.press(0, 36, 0.0)                      # a bass note held from before
    for step, note in ((15.0, 60), (15.2, 64), (15.4, 67)):
        keys.press(0, note, step)
    assert keys.last_rang_to(16.0) == 16.0      # it sounds
    keys.hear(off(60), 15.7)
    keys.hear(off(64), 15.8)
    assert keys.last_rang_to(16.0) == 16.0
    keys.hear(off(67), 18.0)
    assert keys.last_rang_to(30.0) == 18.0      # tied over the bar line to step 18, the bass note still down
    keys.hear(cc(64, 127), 19.0)
    keys.press(0, 62, 31.0)
    keys.hear(off(62), 31.5)
    assert keys.last_rang_to(33.0) == 33.0      # let go under the pedal: it rings on
    keys.hear(cc(64, 0), 34.0)
    assert keys.last_rang_to(40.0) == 34.0
    keys.press(0, 65, 47.0)
    keys.hear(off(65))                          # where it was let go is not known: as at once
    assert keys.last_rang_to(50.0) == 47.0


def test_a_jump_forgets_the_last_chord_and_a_key_held_across_it_still_goes_stale() -> None:
    """A Start from 0 after bar 30: the chord struck before it rang elsewhere, and a key held
    across the jump counts as struck at it, so it still stops keeping a rest away after HELD_FOR."""
    keys = Keys()
    keys.press(0, 60, 480.0)
    keys.press(0, 64, 479.0)
    keys.hear(off(64), 482.0)
    keys.relocate(0.0)
    assert keys.last_rang_to(10.0) is None
    assert keys.held(HELD_FOR - 1.0) and not keys.held(HELD_FOR + 1.0)


def test_sounding_since_counts_only_keys_struck_from_then_on() -> None:
    keys = pedal_down_with(40)                 # a key left down at step 0
    keys.press(0, 60, 32.0)                    # a stab at 32, let go under the pedal
    keys.hear(off(60))
    assert keys.sounding_since(36.0, 32.0), "the stab rings on under the pedal"
    keys.hear(cc(64, 0))
    assert keys.sounding(36.0) and not keys.sounding_since(36.0, 32.0), "only the old key sounds"

"""benchmarks.traffic: the bytes one run of a compiled program moves, loops counted."""

import jax
import jax.numpy as jnp
import pytest

from benchmarks.traffic import nbytes, traffic

# A hand-written optimized module (the syntax of compiled.as_text()): a loop of 20 trips
# whose body fuses a slice of a tenth of a [1000] parameter, an in-place update of 5
# elements, a conditional of a cheap and a dear branch; a loop of unknown trip count; a
# gather of 5 of 1000 elements.
MODULE = """
HloModule m

%fused_slice (param_0.1: f32[1000]) -> f32[100] {
  %param_0.1 = f32[1000]{0} parameter(0)
  %mul.1 = f32[1000]{0} multiply(%param_0.1, %param_0.1)
  ROOT %slice.1 = f32[100]{0} slice(%mul.1), slice={[0:100]}
}

%fused_update (param_0.2: f32[1000], param_1.2: f32[5], param_2.2: s32[]) -> f32[1000] {
  %param_0.2 = f32[1000]{0} parameter(0)
  %param_1.2 = f32[5]{0} parameter(1)
  %param_2.2 = s32[] parameter(2)
  ROOT %dus.1 = f32[1000]{0} dynamic-update-slice(%param_0.2, %param_1.2, %param_2.2)
}

%cheap (p.3: f32[5]) -> f32[5] {
  %p.3 = f32[5]{0} parameter(0)
  ROOT %neg.3 = f32[5]{0} negate(%p.3)
}

%dear (p.4: f32[5]) -> f32[5] {
  %p.4 = f32[5]{0} parameter(0)
  %b.4 = f32[1000]{0} broadcast(%p.4), dimensions={}
  ROOT %s.4 = f32[5]{0} slice(%b.4), slice={[0:5]}
}

%body (p.5: (s32[], f32[1000], f32[5])) -> (s32[], f32[1000], f32[5]) {
  %p.5 = (s32[], f32[1000]{0}, f32[5]{0}) parameter(0)
  %i.5 = s32[] get-tuple-element(%p.5), index=0
  %x.5 = f32[1000]{0} get-tuple-element(%p.5), index=1
  %y.5 = f32[5]{0} get-tuple-element(%p.5), index=2
  %part.5 = f32[100]{0} fusion(%x.5), kind=kLoop, calls=%fused_slice
  %new.5 = f32[1000]{0} fusion(%x.5, %y.5, %i.5), kind=kLoop, calls=%fused_update
  %pick.5 = s32[] constant(1)
  %z.5 = f32[5]{0} conditional(%pick.5, %y.5, %y.5), branch_computations={%cheap, %dear}
  ROOT %t.5 = (s32[], f32[1000]{0}, f32[5]{0}) tuple(%i.5, %new.5, %z.5)
}

%cond (p.6: (s32[], f32[1000], f32[5])) -> pred[] {
  %p.6 = (s32[], f32[1000]{0}, f32[5]{0}) parameter(0)
  %i.6 = s32[] get-tuple-element(%p.6), index=0
  %n.6 = s32[] constant(20)
  ROOT %lt.6 = pred[] compare(%i.6, %n.6), direction=LT
}

ENTRY %main (a: f32[1000], b: f32[5]) -> (s32[], f32[1000], f32[5]) {
  %a = f32[1000]{0} parameter(0)
  %b = f32[5]{0} parameter(1)
  %zero = s32[] constant(0)
  %idx = s32[5,1]{1,0} constant({ {0}, {9}, {99}, {999}, {9} })
  %some = f32[5]{0} gather(%a, %idx), offset_dims={}, collapsed_slice_dims={0}, start_index_map={0}, GATHER
  %init = (s32[], f32[1000]{0}, f32[5]{0}) tuple(%zero, %a, %b)
  %loop = (s32[], f32[1000]{0}, f32[5]{0}) while(%init), condition=%cond, body=%body, backend_config=TRIPS
  ROOT %again = (s32[], f32[1000]{0}, f32[5]{0}) while(%loop), condition=%cond, body=%body
}
""".replace("TRIPS", '{"known_trip_count":{"n":"20"}}').replace("GATHER", "index_vector_dim=1, slice_sizes={1}")


def test_shapes_are_sized_by_their_elements():
    assert nbytes("f32[12,1024]{1,0}") == 49_152
    assert nbytes("(s32[], c64[6,7], pred[3])") == 4 + 6 * 7 * 8 + 3


def test_loops_are_counted_by_their_trips_and_each_instruction_by_its_rule():
    # one body: the slice fusion reads a tenth of [1000] and writes [100] (400 + 400); the
    # update reads and writes 5 elements and reads its index (20 + 20 + 4 + 4: the index
    # is both a parameter read and an operand of the update); the dear branch reads 20 and
    # broadcasts 4000, then slices 20 (40); the condition compares (4 + 4 + 1)
    body = (400 + 400) + (20 + 20 + 4 + 4) + max(20 + 20, (20 + 4000) + 40) + (4 + 4 + 1)
    moved = traffic(MODULE)
    gather = 20 + 20 + 20  # five of a's elements read and written, five indices read
    assert moved.total == pytest.approx(20 * body + body + gather)  # the second loop's trips are unknown: once
    assert moved.once == pytest.approx(2 * body + gather)
    assert moved.unknown_trips == 1
    assert moved.items[0].name == "b.4" and moved.items[0].bytes == pytest.approx(21 * 4020)


def test_a_compiled_scan_moves_its_carry_once_per_trip():
    def compiled(trips):
        body = lambda c, _: (jnp.sin(c) * 1.0001 + 0.3, None)
        return jax.jit(lambda x: jax.lax.scan(body, x, length=trips)[0]).lower(jnp.ones(1000, jnp.float32)).compile()

    short, long = compiled(10), compiled(100)
    per_trip = (traffic(long.as_text()).total - traffic(short.as_text()).total) / 90
    assert 8000 <= per_trip < 8200  # the [1000] float32 carry read and written, and the counter
    # with each loop body counted once, the figure is XLA's own cost analysis (within 5%)
    xla = long.cost_analysis()
    xla = (xla[0] if isinstance(xla, (list, tuple)) else xla)["bytes accessed"]
    assert traffic(long.as_text()).once == pytest.approx(xla, rel=0.05)

"""Hypothesis strategies shared by the API property tests."""

from hypothesis import strategies as st

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    # Past 64 bits and past a double (issue 8 item 2); infinity as JSON writes it.
    st.integers(min_value=2**64, max_value=10**400).flatmap(lambda n: st.sampled_from([n, -n])),
    st.sampled_from([float("inf"), float("-inf")]),
    st.text(max_size=20),
    st.sampled_from(["gsm", "wcdma", "lte", "nr", "cdma", "a8:20:66:00:00:01", "01", "-50"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

"""The grade request's and the batch envelope's fast checks (`is_valid_grade_request`, `is_valid_batch`)
accept exactly what their
marshmallow schemas load: a difference would be a hole in the contract."""

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from service.contract.batch import BatchRequestSchema, is_valid_batch
from service.contract.grade import GradeRequestSchema, is_valid_grade_request
from tests.property import examples
from tests.test_validation_differential import ids, near_valid_node, numbers

submitted_fields = {
    "id": st.one_of(st.text(min_size=1, max_size=3), ids),
    "data": numbers,
    "grad": numbers,
    "local_grads": st.one_of(st.lists(numbers, max_size=3), st.lists(st.floats(-2, 2), max_size=3), numbers),
    "extra": st.integers(),
}


@st.composite
def submitted_entry(draw):
    """A valid entry with zero or one field broken, or sometimes not an object."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.one_of(st.none(), st.integers(), st.text(max_size=2)))
    entry = {"id": draw(st.one_of(st.text(min_size=1, max_size=2), st.integers(0, 5)))}
    for key in draw(st.sets(st.sampled_from(["data", "grad", "local_grads"]))):
        entry[key] = draw(st.floats(-2, 2)) if key != "local_grads" else draw(st.lists(st.floats(-2, 2), max_size=2))
    if draw(st.booleans()):
        key = draw(st.sampled_from(list(submitted_fields)))
        entry[key] = draw(submitted_fields[key])
    return entry


tolerances = st.one_of(
    st.fixed_dictionaries({}, optional={"rtol": st.floats(0, 1), "atol": st.floats(0, 1)}),
    st.dictionaries(st.sampled_from(["rtol", "atol", "btol"]), numbers, max_size=2),
    numbers,
)


def marshmallow_loads(schema, document):
    try:
        schema.load(document)
        return True
    except ValidationError:
        return False


@settings(max_examples=examples(200))
@given(
    st.lists(near_valid_node(), min_size=1, max_size=3),
    st.one_of(st.lists(submitted_entry(), max_size=3), submitted_entry()),
    st.one_of(st.none(), tolerances),
    st.dictionaries(st.sampled_from(["extra", "submitted"]), st.integers(), max_size=1),
)
def test_the_grade_fast_path_accepts_exactly_what_marshmallow_loads(nodes, submitted, tolerance, more):
    document = {"nodes": nodes, "submitted": submitted, **({} if tolerance is None else {"tolerance": tolerance})}
    document.update(more)
    assert is_valid_grade_request(document, 2) == marshmallow_loads(GradeRequestSchema(max_nodes=2), document)


@settings(max_examples=150)
@given(
    st.one_of(
        st.lists(
            st.one_of(st.fixed_dictionaries({"nodes": st.lists(st.none(), max_size=4)}), st.integers()), max_size=4
        ),
        st.integers(),
        st.none(),
    ),
    st.dictionaries(st.sampled_from(["extra", "graphs"]), st.integers(), max_size=1),
    st.integers(1, 3),
    st.integers(1, 8),
)
def test_the_batch_fast_path_accepts_exactly_what_marshmallow_loads(graphs, more, max_graphs, max_nodes):
    document = {"graphs": graphs, **more}
    schema = BatchRequestSchema(max_graphs=max_graphs, max_nodes=max_nodes)
    assert is_valid_batch(document, max_graphs, max_nodes) == marshmallow_loads(schema, document)

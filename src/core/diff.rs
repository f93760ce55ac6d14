//! The JSON patch from one object to another, as `json_patch::diff` writes it (same operations,
//! same order), without walking the parts that are equal. A workload and its desired state
//! differ in a few annotations or env vars; `json_patch::diff` builds a path for every node of
//! both trees, a third of the CPU of stamping a review.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation};
use serde_json::{Map, Value};

pub fn diff(from: &Value, to: &Value) -> Patch {
    let mut patch = Patch::default();
    let mut at = PointerBuf::new();
    diff_into(from, to, &mut at, &mut patch);
    patch
}

fn diff_into(from: &Value, to: &Value, at: &mut PointerBuf, patch: &mut Patch) {
    if from == to {
        return;
    }
    match (from, to) {
        (Value::Object(from), Value::Object(to)) => diff_objects(from, to, at, patch),
        // Arrays and scalars: json_patch's own rules (index shifts, replace), under `at`.
        _ => patch
            .0
            .extend(json_patch::diff(from, to).0.into_iter().map(|op| under(at, op))),
    }
}

/// json_patch's object rule: keys of `to` in order (recurse or add), then removed keys.
fn diff_objects(from: &Map<String, Value>, to: &Map<String, Value>, at: &mut PointerBuf, patch: &mut Patch) {
    for (key, value) in to {
        match from.get(key) {
            // `diff_into` returns at once when they are equal.
            Some(old) => {
                at.push_back(key);
                diff_into(old, value, at, patch);
                at.pop_back();
            }
            None => {
                at.push_back(key);
                patch.0.push(PatchOperation::Add(AddOperation {
                    path: at.clone(),
                    value: value.clone(),
                }));
                at.pop_back();
            }
        }
    }
    for key in from.keys().filter(|k| !to.contains_key(*k)) {
        at.push_back(key);
        patch
            .0
            .push(PatchOperation::Remove(RemoveOperation { path: at.clone() }));
        at.pop_back();
    }
}

/// `op` with its paths moved under `at`.
fn under(at: &PointerBuf, op: PatchOperation) -> PatchOperation {
    let prefix = |path: &PointerBuf| at.concat(path);
    match op {
        PatchOperation::Add(mut o) => {
            o.path = prefix(&o.path);
            PatchOperation::Add(o)
        }
        PatchOperation::Remove(mut o) => {
            o.path = prefix(&o.path);
            PatchOperation::Remove(o)
        }
        PatchOperation::Replace(mut o) => {
            o.path = prefix(&o.path);
            PatchOperation::Replace(o)
        }
        PatchOperation::Move(mut o) => {
            o.path = prefix(&o.path);
            o.from = prefix(&o.from);
            PatchOperation::Move(o)
        }
        PatchOperation::Copy(mut o) => {
            o.path = prefix(&o.path);
            o.from = prefix(&o.from);
            PatchOperation::Copy(o)
        }
        PatchOperation::Test(mut o) => {
            o.path = prefix(&o.path);
            PatchOperation::Test(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (0i64..4).prop_map(Value::from),
            "[a-c/~]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-c/~]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn the_same_patch_as_json_patch(from in value(), to in value()) {
            prop_assert_eq!(diff(&from, &to), json_patch::diff(&from, &to));
        }
    }

    #[test]
    fn paths_under_arrays_and_escaped_keys() {
        let from = json!({"a/b": {"env": [{"name": "X", "value": "1"}], "k": 1}});
        let to = json!({"a/b": {"env": [{"name": "X", "value": "2"}, {"name": "Y"}]}});
        let patch = diff(&from, &to);
        assert_eq!(patch, json_patch::diff(&from, &to));
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!([
                {"op": "replace", "path": "/a~1b/env/0/value", "value": "2"},
                {"op": "add", "path": "/a~1b/env/1", "value": {"name": "Y"}},
                {"op": "remove", "path": "/a~1b/k"},
            ])
        );
    }
}

//! Schema evolution. Events are stored in the shape their type had when they were appended and are
//! never rewritten; readers get the current shape because every read path (stream loads and the
//! tailing consumers alike) goes through [`Upcasters::upcast`].

use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// Turns one stored shape into the next: (payload, personal) at version N into version N + 1.
pub type UpcastFn = fn(Value, Option<Value>) -> Result<(Value, Option<Value>), String>;

/// The registered upcasters, keyed by event type and the version they upgrade *from*.
#[derive(Clone, Default)]
pub struct Upcasters {
    steps: HashMap<(String, i16), UpcastFn>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self.steps.keys().collect();
        keys.sort();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}

impl Upcasters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the step that upgrades `event_type` from `from_version` to `from_version + 1`.
    pub fn register(mut self, event_type: &str, from_version: i16, step: UpcastFn) -> Self {
        self.steps
            .insert((event_type.to_owned(), from_version), step);
        self
    }

    /// Applies every step from the stored version on, until no further step is registered. The
    /// result's version is therefore the current one for this type.
    pub fn upcast(
        &self,
        event_type: &str,
        mut version: i16,
        mut payload: Value,
        mut personal: Option<Value>,
    ) -> Result<(i16, Value, Option<Value>), String> {
        // Keyed lookups allocate the key; events at their current version (nearly all) skip that.
        if self.steps.is_empty() {
            return Ok((version, payload, personal));
        }
        let mut key = (event_type.to_owned(), version);
        while let Some(step) = self.steps.get(&key) {
            (payload, personal) = step(payload, personal)?;
            version += 1;
            key.1 = version;
        }
        Ok((version, payload, personal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn split_name(
        mut payload: Value,
        personal: Option<Value>,
    ) -> Result<(Value, Option<Value>), String> {
        let mut personal = personal.ok_or("no personal data")?;
        let full = personal["name"].as_str().ok_or("no name")?.to_owned();
        let (given, family) = full.split_once(' ').ok_or("name has no space")?;
        personal["given_name"] = json!(given);
        personal["family_name"] = json!(family);
        personal.as_object_mut().unwrap().remove("name");
        payload["upcast"] = json!(true);
        Ok((payload, Some(personal)))
    }

    fn add_flag(
        mut payload: Value,
        personal: Option<Value>,
    ) -> Result<(Value, Option<Value>), String> {
        payload["flag"] = json!(2);
        Ok((payload, personal))
    }

    #[test]
    fn chains_steps_to_the_current_version() {
        let up = Upcasters::new()
            .register("T", 1, split_name)
            .register("T", 2, add_flag);
        let (v, payload, personal) = up
            .upcast("T", 1, json!({}), Some(json!({"name": "Ada Lovelace"})))
            .unwrap();
        assert_eq!(v, 3);
        assert_eq!(payload, json!({"upcast": true, "flag": 2}));
        assert_eq!(
            personal,
            Some(json!({"given_name": "Ada", "family_name": "Lovelace"}))
        );
    }

    #[test]
    fn current_events_pass_through_unchanged() {
        let up = Upcasters::new().register("T", 1, split_name);
        let (v, payload, _) = up.upcast("T", 2, json!({"a": 1}), None).unwrap();
        assert_eq!((v, payload), (2, json!({"a": 1})));
        let (v, _, _) = up.upcast("Other", 1, json!({}), None).unwrap();
        assert_eq!(v, 1);
    }

    #[test]
    fn a_failing_step_is_reported() {
        let up = Upcasters::new().register("T", 1, split_name);
        assert!(up.upcast("T", 1, json!({}), None).is_err());
    }
}

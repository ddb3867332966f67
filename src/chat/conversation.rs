//! Conversation state: an optional system prompt and the messages after it, with the JSON form
//! that `/save`, `/load` and `--render` use (`[{"role": ..., "content": ...}, ...]`).

use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `user`, `assistant`, or whatever role the template understands.
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Message {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// Why a conversation could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("conversation JSON: {0}")]
    Json(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn json_err(s: impl Into<String>) -> ConversationError {
    ConversationError::Json(s.into())
}

/// The system prompt is kept apart so that dropping old turns can never drop it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conversation {
    pub system: Option<String>,
    /// Messages after the system prompt, oldest first.
    pub messages: Vec<Message>,
}

impl Conversation {
    pub fn new(system: Option<String>) -> Self {
        Conversation {
            system,
            messages: Vec::new(),
        }
    }

    pub fn push(&mut self, role: &str, content: &str) {
        self.messages.push(Message::new(role, content));
    }

    /// Every message in template order: the system prompt first.
    pub fn to_messages(&self) -> Vec<Message> {
        self.system
            .iter()
            .map(|s| Message::new("system", s))
            .chain(self.messages.iter().cloned())
            .collect()
    }

    /// Removes the oldest turn: the first message and everything up to the next user message.
    /// Returns false when there is nothing to remove.
    pub fn drop_oldest_turn(&mut self) -> bool {
        if self.messages.is_empty() {
            return false;
        }
        let next_user = self.messages[1..]
            .iter()
            .position(|m| m.role == "user")
            .map_or(self.messages.len(), |i| i + 1);
        self.messages.drain(..next_user);
        true
    }

    /// The number of turns (user messages).
    pub fn n_turns(&self) -> usize {
        self.messages.iter().filter(|m| m.role == "user").count()
    }

    /// `[{"role": ..., "content": ...}, ...]`, the system prompt first.
    pub fn to_json(&self) -> Value {
        self.to_messages()
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect()
    }

    /// Parses the form [`Self::to_json`] writes. A `system` message is only accepted first.
    pub fn from_json(v: &Value) -> Result<Self, ConversationError> {
        let list = v
            .as_array()
            .ok_or_else(|| json_err("expected an array of {\"role\", \"content\"} objects"))?;
        let mut conv = Conversation::default();
        for (i, m) in list.iter().enumerate() {
            let field = |name: &str| {
                m.get(name).and_then(Value::as_str).ok_or_else(|| {
                    json_err(format!("message {i}: `{name}` is missing or not a string"))
                })
            };
            let (role, content) = (field("role")?, field("content")?);
            if role == "system" {
                if i != 0 {
                    return Err(json_err(format!(
                        "message {i}: a system message is only allowed first"
                    )));
                }
                conv.system = Some(content.to_string());
            } else {
                conv.push(role, content);
            }
        }
        Ok(conv)
    }

    pub fn from_json_str(s: &str) -> Result<Self, ConversationError> {
        let v: Value = serde_json::from_str(s).map_err(|e| json_err(e.to_string()))?;
        Self::from_json(&v)
    }

    pub fn load(path: &Path) -> Result<Self, ConversationError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConversationError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json_str(&text)
    }

    /// Writes the JSON form through a temporary file, fsync and rename: a crash leaves either
    /// the old file or the new one, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), ConversationError> {
        let io = |source| ConversationError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = path.with_file_name(name);
        let text =
            serde_json::to_string_pretty(&self.to_json()).map_err(|e| json_err(e.to_string()))?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv() -> Conversation {
        let mut c = Conversation::new(Some("be brief".into()));
        for (r, t) in [
            ("user", "a"),
            ("assistant", "b"),
            ("user", "c"),
            ("assistant", "d"),
            ("user", "e"),
        ] {
            c.push(r, t);
        }
        c
    }

    #[test]
    fn json_round_trip_keeps_system_first() {
        let c = conv();
        let v = c.to_json();
        assert_eq!(v[0]["role"], "system");
        assert_eq!(v[0]["content"], "be brief");
        assert_eq!(v[5]["content"], "e");
        assert_eq!(Conversation::from_json(&v).unwrap(), c);
    }

    #[test]
    fn malformed_json_names_the_message() {
        let e = Conversation::from_json_str(r#"[{"role":"user","content":"x"},{"role":"user"}]"#)
            .unwrap_err();
        assert!(e.to_string().contains("message 1: `content`"), "{e}");
        let e = Conversation::from_json_str(
            r#"[{"role":"user","content":"x"},{"role":"system","content":"y"}]"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("only allowed first"), "{e}");
        assert!(Conversation::from_json_str(r#"{"role":"user"}"#).is_err());
        assert!(Conversation::from_json_str("[").is_err());
    }

    #[test]
    fn dropping_turns_keeps_the_system_prompt_and_alternation() {
        let mut c = conv();
        assert!(c.drop_oldest_turn());
        assert_eq!(c.messages[0], Message::new("user", "c"));
        assert!(c.drop_oldest_turn());
        assert_eq!(c.messages, vec![Message::new("user", "e")]);
        assert!(c.drop_oldest_turn());
        assert!(!c.drop_oldest_turn());
        assert_eq!(c.system.as_deref(), Some("be brief"));
    }

    #[test]
    fn save_is_atomic_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, "old").unwrap();
        conv().save(&path).unwrap();
        assert_eq!(Conversation::load(&path).unwrap(), conv());
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
        let missing = dir.path().join("no/such/dir/c.json");
        assert!(conv().save(&missing).is_err());
    }
}

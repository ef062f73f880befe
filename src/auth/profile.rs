//! The onboarding profile every new user fills in before their first lesson.

use chrono::{DateTime, Utc};

use super::validate::{BrokenRule, Invalid};
use crate::{
    AppState,
    fault::{Fault, carries_fault},
    session::live::LiveUser,
    store::profiles::{self, ProfileFields},
};

pub const MAX_LEARNING_GOALS_CHARS: usize = 2000;

/// Experience with a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum Experience {
    None,
    Beginner,
    Intermediate,
    Advanced,
}

impl Experience {
    pub fn as_str(self) -> &'static str {
        match self {
            Experience::None => "none",
            Experience::Beginner => "beginner",
            Experience::Intermediate => "intermediate",
            Experience::Advanced => "advanced",
        }
    }

    /// As stored; anything else reads as `None`.
    fn from_stored(value: &str) -> Self {
        [Self::Beginner, Self::Intermediate, Self::Advanced]
            .into_iter()
            .find(|e| e.as_str() == value)
            .unwrap_or(Self::None)
    }
}

/// The onboarding profile.
#[derive(Debug, Clone, poem_openapi::Object)]
pub struct Profile {
    pub robotics_experience: Experience,
    pub ai_ml_experience: Experience,
    /// As stored: plain text (escape it when showing it in HTML).
    pub learning_goals: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<entity::profile::Model> for Profile {
    fn from(row: entity::profile::Model) -> Self {
        Self {
            robotics_experience: Experience::from_stored(&row.robotics_experience),
            ai_ml_experience: Experience::from_stored(&row.ai_ml_experience),
            learning_goals: row.learning_goals,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

pub struct ProfileInput {
    pub robotics_experience: Experience,
    pub ai_ml_experience: Experience,
    pub learning_goals: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("invalid input")]
    Invalid(Invalid),
    #[error(transparent)]
    Fault(Fault),
}

carries_fault!(ProfileError);

/// The signed-in user's profile; `None` until it is first saved.
pub async fn get(state: &AppState, user: &LiveUser) -> Result<Option<Profile>, Fault> {
    Ok(profiles::find(&state.db, user.user_id()).await?.map(Profile::from))
}

/// Validates and saves the signed-in user's profile (creating it the first time).
pub async fn put(state: &AppState, user: &LiveUser, input: ProfileInput) -> Result<Profile, ProfileError> {
    let learning_goals =
        learning_goals(&input.learning_goals).map_err(|e| ProfileError::Invalid(Invalid::profile(e)))?;
    let fields = ProfileFields {
        robotics_experience: input.robotics_experience.as_str().into(),
        ai_ml_experience: input.ai_ml_experience.as_str().into(),
        learning_goals,
    };
    Ok(profiles::save(&state.db, user.user_id(), fields, state.clock.now()).await?.into())
}

fn rule(rule: &'static str, message: &'static str) -> BrokenRule {
    BrokenRule { field: "learning_goals", rule, message }
}

/// Plain text: markup is stripped (with the content of `<script>` and
/// `<style>`) and entities decoded, again and again until nothing changes,
/// so markup hidden behind entities (`&lt;img …&gt;`, `&#60;script&#62;`,
/// `&amp;lt;…`) or split around a tag (`<scr<script>ipt>`) is stripped too.
/// Control characters other than line breaks and tabs are refused (also
/// when they were written as entities); the result is trimmed and at most
/// 2000 characters.
pub fn learning_goals(raw: &str) -> Result<String, BrokenRule> {
    let invalid = || rule("invalid_characters", "Learning goals cannot contain control characters.");
    let has_control = |text: &str| text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    if has_control(raw) {
        return Err(invalid());
    }
    let text = plain_text(raw).ok_or_else(|| rule("invalid_characters", "Learning goals cannot be nested markup."))?;
    if has_control(&text) {
        return Err(invalid());
    }
    let text = text.trim();
    if text.chars().count() > MAX_LEARNING_GOALS_CHARS {
        return Err(rule("too_long", "Learning goals are at most 2000 characters."));
    }
    Ok(text.to_string())
}

/// Rounds of decoding and stripping before input counts as hostile: each
/// round peels one layer of encoding, and no honest text has more than two.
const MAX_ROUNDS: usize = 8;

/// The text of an HTML fragment, stripped and decoded to a fixed point:
/// once a round changes nothing, what is left is text that an HTML parser
/// reads as exactly itself — no tag, comment or entity in it. `None` if
/// that takes more than `MAX_ROUNDS` rounds.
fn plain_text(raw: &str) -> Option<String> {
    let mut text = raw.to_string();
    for _ in 0..MAX_ROUNDS {
        let next = strip_once(&text);
        if next == text {
            return Some(text);
        }
        text = next;
    }
    None
}

/// One round: ammonia with no allowed tags removes every tag and comment and
/// decodes entities; its output is HTML-escaped text, which is turned back
/// into plain text (the serializer escapes only these four).
fn strip_once(raw: &str) -> String {
    let escaped = ammonia::Builder::empty().clean(raw).to_string();
    escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_stripped_and_text_kept() {
        assert_eq!(learning_goals("<b>Build</b> a <i>robot</i> arm").unwrap(), "Build a robot arm");
        assert_eq!(learning_goals("<script>alert(1)</script>ROS & SLAM").unwrap(), "ROS & SLAM");
        assert_eq!(learning_goals("x < y and y > z").unwrap(), "x < y and y > z");
        assert_eq!(learning_goals("  line one\nline two  ").unwrap(), "line one\nline two");
    }

    /// Whether an HTML parser would find markup in `text`: a tag opener, a
    /// comment, or a character reference.
    fn looks_like_markup(text: &str) -> bool {
        let bytes = text.as_bytes();
        let opener = bytes
            .windows(2)
            .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || matches!(w[1], b'/' | b'!' | b'?')));
        let reference = text.match_indices('&').any(|(i, _)| {
            let rest = &text[i + 1..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '#').collect();
            !name.is_empty() && rest[name.len()..].starts_with(';')
        });
        opener || reference
    }

    #[test]
    fn encoded_and_nested_markup_never_survives() {
        let payloads = [
            "&lt;img src=x onerror=alert(1)&gt;",
            "&#60;script&#62;alert(1)&#60;/script&#62;",
            "&#x3c;svg onload=alert(1)&#x3e;",
            "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;",
            "&amp;amp;lt;b&amp;amp;gt;deep&amp;amp;lt;/b&amp;amp;gt;",
            "<scr<script>ipt>alert(1)</scr</script>ipt>",
            "<<script>script>alert(1)<</script>/script>",
            "<img src=x onerror=alert(1)//",
            "<!-- a --!><img src=x>",
            "&lt;!-- comment --&gt;&lt;a href=javascript:alert(1)&gt;x&lt;/a&gt;",
            "<svg><style>&lt;img src=x&gt;</style></svg>",
            "<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>",
            "&LT;script&GT;",
            "&ltscript&gt",
            "<ScRiPt>alert(1)</sCrIpT>",
            "\u{ff1c}script\u{ff1e} (full-width look-alikes are text)",
        ];
        for payload in payloads {
            match learning_goals(payload) {
                Ok(text) => assert!(!looks_like_markup(&text), "{payload:?} kept markup: {text:?}"),
                Err(e) => assert_eq!(e.rule, "invalid_characters", "{payload:?}"),
            }
        }
        assert_eq!(learning_goals("&lt;img src=x onerror=alert(1)&gt;Build robots").unwrap(), "Build robots");
    }

    #[test]
    fn control_characters_written_as_entities_are_refused_too() {
        assert_eq!(learning_goals("bell&#7;").unwrap_err().rule, "invalid_characters");
        assert_eq!(learning_goals("esc&#x1b;[31m").unwrap_err().rule, "invalid_characters");
    }

    #[test]
    fn control_characters_and_length_are_refused() {
        assert_eq!(learning_goals("bell\u{7}").unwrap_err().rule, "invalid_characters");
        assert_eq!(learning_goals(&"é".repeat(2001)).unwrap_err().rule, "too_long");
        assert!(learning_goals(&"é".repeat(2000)).is_ok());
    }
}

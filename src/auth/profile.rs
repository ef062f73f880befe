//! The onboarding profile every new user fills in before their first lesson.

use chrono::Utc;

use super::flow::FlowError;
use crate::{
    AppState,
    error::FieldError,
    store::profiles::{self, Profile, ProfileFields},
    token::AccessClaims,
};

pub const MAX_LEARNING_GOALS_CHARS: usize = 2000;

/// How much someone has done of something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

    pub fn parse(value: &str) -> Option<Self> {
        [Self::None, Self::Beginner, Self::Intermediate, Self::Advanced].into_iter().find(|e| e.as_str() == value)
    }
}

pub struct ProfileInput {
    pub robotics_experience: Experience,
    pub ai_ml_experience: Experience,
    pub learning_goals: String,
}

/// The caller's profile; `None` until it is first saved.
pub async fn get(state: &AppState, claims: &AccessClaims) -> Result<Option<Profile>, FlowError> {
    super::account::live_user(state, claims).await?;
    Ok(profiles::find(&state.db, claims.sub).await?)
}

/// Validates and saves the caller's profile (creating it the first time).
pub async fn put(state: &AppState, claims: &AccessClaims, input: ProfileInput) -> Result<Profile, FlowError> {
    let learning_goals = learning_goals(&input.learning_goals)
        .map_err(|e| FlowError::Invalid { code: "invalid_profile", errors: vec![e] })?;
    super::account::live_user(state, claims).await?;
    let fields = ProfileFields {
        robotics_experience: input.robotics_experience.as_str().into(),
        ai_ml_experience: input.ai_ml_experience.as_str().into(),
        learning_goals,
    };
    Ok(profiles::save(&state.db, claims.sub, fields, Utc::now()).await?)
}

fn rule(rule: &str, message: &str) -> FieldError {
    FieldError { field: "learning_goals".into(), rule: rule.into(), message: message.into() }
}

/// Plain text: markup is stripped (with the content of `<script>` and
/// `<style>`), control characters other than line breaks and tabs are
/// refused, and the result is trimmed and at most 2000 characters.
pub fn learning_goals(raw: &str) -> Result<String, FieldError> {
    if raw.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(rule("invalid_characters", "Learning goals cannot contain control characters."));
    }
    let text = strip_markup(raw);
    let text = text.trim();
    if text.chars().count() > MAX_LEARNING_GOALS_CHARS {
        return Err(rule("too_long", "Learning goals are at most 2000 characters."));
    }
    Ok(text.to_string())
}

/// The text of an HTML fragment. ammonia with no allowed tags removes every
/// tag and comment; its output is HTML-escaped text, which is turned back
/// into plain text (the serializer escapes only these four).
fn strip_markup(raw: &str) -> String {
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

    #[test]
    fn control_characters_and_length_are_refused() {
        assert_eq!(learning_goals("bell\u{7}").unwrap_err().rule, "invalid_characters");
        assert_eq!(learning_goals(&"é".repeat(2001)).unwrap_err().rule, "too_long");
        assert!(learning_goals(&"é".repeat(2000)).is_ok());
    }
}

//! String fields whose schema states the rules the server enforces (format,
//! lengths, patterns), so generated clients and fuzzers can tell valid input
//! from invalid. They read exactly as a plain `String` does (a JSON number
//! or boolean becomes its text); the rules themselves are checked by the use
//! cases, which answer with the documented 4xx codes, not by the parser.

use std::borrow::Cow;

use poem_openapi::{
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde_json::Value;

/// What a field's schema says beyond "a string".
struct Rules {
    format: Option<&'static str>,
    min: Option<usize>,
    max: Option<usize>,
    pattern: Option<&'static str>,
}

macro_rules! string_field {
    ($(#[$doc:meta])* $name:ident, $rules:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = String;
            type RawElementValueType = String;

            fn name() -> Cow<'static, str> {
                "string".into()
            }

            fn schema_ref() -> MetaSchemaRef {
                let rules: Rules = $rules;
                let mut schema = MetaSchema::new("string");
                schema.format = rules.format;
                schema.min_length = rules.min;
                schema.max_length = rules.max;
                schema.pattern = rules.pattern.map(String::from);
                MetaSchemaRef::Inline(Box::new(schema))
            }

            fn as_raw_value(&self) -> Option<&String> {
                Some(&self.0)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
                Box::new(std::iter::once(&self.0))
            }
        }

        impl ParseFromJSON for $name {
            fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
                String::parse_from_json(value).map(Self).map_err(poem_openapi::types::ParseError::propagate)
            }
        }

        impl ToJSON for $name {
            fn to_json(&self) -> Option<Value> {
                Some(Value::String(self.0.clone()))
            }
        }
    };
}

const fn plain() -> Rules {
    Rules { format: None, min: None, max: None, pattern: None }
}

string_field!(
    /// An email address: at most 254 characters, ASCII before the `@`.
    EmailAddress,
    Rules { format: Some("email"), min: Some(3), max: Some(crate::auth::validate::MAX_EMAIL_CHARS), ..plain() }
);

string_field!(
    /// A password being set: 8–128 characters.
    NewPassword,
    Rules {
        format: Some("password"),
        min: Some(crate::auth::validate::MIN_PASSWORD_CHARS),
        max: Some(crate::auth::validate::MAX_PASSWORD_CHARS),
        ..plain()
    }
);

string_field!(
    /// A password being checked: anything, so no rule gives away what is stored.
    CurrentPassword,
    Rules { format: Some("password"), ..plain() }
);

string_field!(
    /// A display name: at most 100 characters.
    DisplayName,
    Rules { max: Some(crate::auth::validate::MAX_NAME_CHARS), ..plain() }
);

string_field!(
    /// Plain text of at most 2000 characters (after markup is stripped).
    LearningGoals,
    Rules { max: Some(crate::auth::profile::MAX_LEARNING_GOALS_CHARS), ..plain() }
);

string_field!(
    /// A verification link's token.
    VerifyToken,
    Rules { pattern: Some("^lk_ev_[A-Za-z0-9_-]{43}$"), ..plain() }
);

string_field!(
    /// A reset link's token.
    ResetToken,
    Rules { pattern: Some("^lk_pr_[A-Za-z0-9_-]{43}$"), ..plain() }
);

string_field!(
    /// A refresh token.
    RefreshTokenValue,
    Rules { pattern: Some("^lk_rt_[A-Za-z0-9_-]{43}$"), ..plain() }
);

string_field!(
    /// A provider sign-in's one-time login code.
    LoginCode,
    Rules { pattern: Some("^lk_oc_[A-Za-z0-9_-]{43}$"), ..plain() }
);

string_field!(
    /// The `mfa_token` of a login's `mfa_required` answer.
    MfaTokenValue,
    Rules { pattern: Some("^lk_mfa_[A-Za-z0-9_-]{43}$"), ..plain() }
);

string_field!(
    /// A code from the authenticator app: six digits.
    TotpCode,
    Rules { pattern: Some("^[0-9]{6}$"), ..plain() }
);

string_field!(
    /// A recovery code (`xxxx-xxxx-xxxx`; case, dashes and spaces do not matter).
    RecoveryCodeValue,
    Rules { max: Some(64), ..plain() }
);

string_field!(
    /// A code from the authenticator app (six digits) or a recovery code.
    SecondFactorCode,
    Rules { max: Some(64), ..plain() }
);

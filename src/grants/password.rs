//! The password of a per-person account: generated here, shown once in the hand-over DM, never
//! logged.
//!
//! # The alphabet
//!
//! 32 characters from `A-Z a-z 0-9`, at least one of each class: 32 x log2(62) = 190 bits from
//! the operating system's CSPRNG (`rand::rng()`, ChaCha seeded from the OS). Letters and digits
//! only, because the password is pasted by a person into places that each have their own
//! metacharacters: a shell (`mysql -p'...'` or unquoted), a `.my.cnf`, a Slack code block, a
//! URL. None of those treat a letter or a digit specially, and a double click selects the whole
//! password in a terminal or a browser (`-`, `.` and `+` break the selection; `_` does not, but
//! 190 bits need no help from it). A password can also never start with `-`, which the client
//! would read as an option. The class rule (one upper, one lower, one digit) satisfies the
//! common "LOW"/"MEDIUM minus special characters" policies; a server whose password policy
//! demands a special character refuses it with error 1819, reported as
//! [`crate::grants::GrantError::PasswordPolicy`].

use std::fmt;

use rand::RngExt;

/// How many characters a generated password has.
pub const PASSWORD_LEN: usize = 32;

const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A secret that prints as `[redacted]` in `Debug` and `Display`, so that it cannot reach a log
/// line by accident. [`Password::expose`] is the one explicit way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// A fresh password from the CSPRNG, by the rule in the module docs.
    pub fn generate() -> Password {
        let mut rng = rand::rng();
        loop {
            // Rejection keeps every accepted password equally likely.
            let candidate: String = (0..PASSWORD_LEN)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect();
            if has_every_class(&candidate) {
                return Password(candidate);
            }
        }
    }

    /// Wraps a secret read from elsewhere (the admin credential from Secrets Manager).
    pub(crate) fn from_secret(secret: String) -> Password {
        Password(secret)
    }

    /// The secret itself: for the hand-over DM and the database connection, nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

fn has_every_class(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().any(u8::is_ascii_uppercase) && bytes.iter().any(u8::is_ascii_lowercase) && bytes.iter().any(u8::is_ascii_digit)
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn passwords_are_long_alphanumeric_and_have_every_class() {
        for _ in 0..200 {
            let p = Password::generate();
            let s = p.expose();
            assert_eq!(s.len(), PASSWORD_LEN);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()), "{s}");
            assert!(has_every_class(s), "{s}");
        }
    }

    #[test]
    fn passwords_differ() {
        let seen: HashSet<String> = (0..1000).map(|_| Password::generate().expose().to_string()).collect();
        assert_eq!(seen.len(), 1000);
    }

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let p = Password::generate();
        assert_eq!(format!("{p}"), "[redacted]");
        assert_eq!(format!("{p:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&p)), "Some([redacted])");
    }

    #[test]
    fn every_character_of_the_alphabet_turns_up() {
        // A broken range (0..61) would never produce '9'.
        let seen: HashSet<u8> = (0..400).flat_map(|_| Password::generate().expose().as_bytes().to_vec()).collect();
        assert_eq!(seen.len(), ALPHABET.len());
    }
}

//! s6's option syntax (skalibs' `subgetopt`): single-letter options, clustered or not
//! (`-wu -T 500`, `-dwD`), a value either attached (`-T500`) or in the next word; options
//! end at the first word that is not one, or after `--`.

use std::ffi::OsString;

/// The options in the order given, each with its value if it takes one, and the operands.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub options: Vec<(char, Option<String>)>,
    pub operands: Vec<String>,
}

/// Parses `args`; `letters` are the options known, `with_value` those that take a value.
pub fn parse(args: Vec<OsString>, letters: &str, with_value: &str) -> Result<Parsed, String> {
    let mut words = Vec::with_capacity(args.len());
    for arg in args {
        let word = arg
            .into_string()
            .map_err(|a| format!("'{}' is not valid UTF-8", a.to_string_lossy()))?;
        words.push(word);
    }
    let mut options = Vec::new();
    let mut words = words.into_iter();
    let mut operands = Vec::new();
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if !word.starts_with('-') || word == "-" {
            operands.push(word);
            break;
        }
        for (at, letter) in word[1..].char_indices() {
            if !letters.contains(letter) {
                return Err(format!("unknown option -{letter}"));
            }
            if !with_value.contains(letter) {
                options.push((letter, None));
                continue;
            }
            let attached = &word[1 + at + letter.len_utf8()..];
            let value = if attached.is_empty() {
                words
                    .next()
                    .ok_or_else(|| format!("option -{letter} needs a value"))?
            } else {
                attached.to_owned()
            };
            options.push((letter, Some(value)));
            break;
        }
    }
    operands.extend(words);
    Ok(Parsed { options, operands })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn clusters_values_and_operands() {
        let parsed = parse(words(&["-dwD", "-T500", "/a", "-u"]), "dwDTu", "wT").unwrap();
        assert_eq!(
            parsed.options,
            vec![
                ('d', None),
                ('w', Some("D".into())),
                ('T', Some("500".into()))
            ]
        );
        assert_eq!(parsed.operands, vec!["/a", "-u"]);
        let parsed = parse(words(&["-T", "5", "--", "-x"]), "T", "T").unwrap();
        assert_eq!(parsed.options, vec![('T', Some("5".into()))]);
        assert_eq!(parsed.operands, vec!["-x"]);
    }

    #[test]
    fn unknown_letters_and_missing_values_are_errors() {
        assert_eq!(
            parse(words(&["-z", "/a"]), "ud", ""),
            Err("unknown option -z".to_owned())
        );
        assert_eq!(
            parse(words(&["-T"]), "T", "T"),
            Err("option -T needs a value".to_owned())
        );
    }
}

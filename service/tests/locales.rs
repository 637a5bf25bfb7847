//! The message catalogues (`service/locales/<locale>/*.ftl`): every key exists in every
//! locale with the same placeholders, every message renders with each placeholder filled,
//! every problem type and notification kind has its texts, and the texts use no
//! placeholder the code does not fill.
#![allow(clippy::unwrap_used)] // tests: a failed setup step is a failed test

use std::collections::{BTreeMap, BTreeSet};

use fluent_syntax::ast;
use goodgo_api::i18n::{self, Locale};
use goodgo_api::notify::Kind;

/// Message id → the variables it references, over every file of `locale`.
fn catalogue(locale: Locale) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (path, text) in i18n::catalogue_files(locale) {
        let resource = fluent_syntax::parser::parse(*text)
            .unwrap_or_else(|(_, errors)| panic!("{path}: {errors:?}"));
        for entry in resource.body {
            match entry {
                ast::Entry::Message(m) => {
                    let mut vars = BTreeSet::new();
                    if let Some(p) = &m.value {
                        pattern_vars(p, &mut vars);
                    }
                    for a in &m.attributes {
                        pattern_vars(&a.value, &mut vars);
                    }
                    let id = m.id.name.to_string();
                    assert!(out.insert(id.clone(), vars).is_none(), "{path}: {id} twice");
                }
                ast::Entry::Junk { content } => panic!("{path}: cannot parse {content}"),
                _ => {}
            }
        }
    }
    out
}

fn pattern_vars(p: &ast::Pattern<&str>, vars: &mut BTreeSet<String>) {
    for element in &p.elements {
        if let ast::PatternElement::Placeable { expression } = element {
            expression_vars(expression, vars);
        }
    }
}

fn expression_vars(e: &ast::Expression<&str>, vars: &mut BTreeSet<String>) {
    match e {
        ast::Expression::Inline(i) => inline_vars(i, vars),
        ast::Expression::Select { selector, variants } => {
            inline_vars(selector, vars);
            for v in variants {
                pattern_vars(&v.value, vars);
            }
        }
    }
}

fn inline_vars(i: &ast::InlineExpression<&str>, vars: &mut BTreeSet<String>) {
    match i {
        ast::InlineExpression::VariableReference { id } => {
            vars.insert(id.name.to_string());
        }
        ast::InlineExpression::Placeable { expression } => expression_vars(expression, vars),
        ast::InlineExpression::FunctionReference { arguments, .. } => {
            for a in &arguments.positional {
                inline_vars(a, vars);
            }
            for a in &arguments.named {
                inline_vars(&a.value, vars);
            }
        }
        _ => {}
    }
}

#[test]
fn every_key_is_in_every_locale_with_the_same_placeholders() {
    let en = catalogue(Locale::En);
    assert!(en.len() > 20, "{}", en.len());
    for locale in Locale::ALL {
        let other = catalogue(locale);
        let keys = |c: &BTreeMap<String, BTreeSet<String>>| c.keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&other), keys(&en), "{locale:?} has other keys than en");
        for (key, vars) in &en {
            assert_eq!(
                &other[key], vars,
                "{locale:?} {key}: other placeholders than en"
            );
        }
    }
}

#[test]
fn every_message_renders_with_every_placeholder_filled() {
    let en = catalogue(Locale::En);
    for locale in Locale::ALL {
        for (key, vars) in &en {
            let args: Vec<(&str, String)> = vars
                .iter()
                .map(|v| (v.as_str(), format!("<{v}>")))
                .collect();
            let (text, errors) = i18n::message_checked(locale, key, &args)
                .unwrap_or_else(|| panic!("{locale:?} {key}: no value"));
            assert!(errors.is_empty(), "{locale:?} {key}: {errors:?}");
            assert!(!text.trim().is_empty(), "{locale:?} {key}: empty");
            for v in vars {
                assert!(
                    text.contains(&format!("<{v}>")),
                    "{locale:?} {key}: ${v} not shown"
                );
            }
            if !vars.is_empty() {
                let (_, errors) = i18n::message_checked(locale, key, &[]).unwrap_or_default();
                assert!(
                    !errors.is_empty(),
                    "{locale:?} {key}: a missing value goes unnoticed"
                );
            }
        }
    }
}

#[test]
fn problems_and_notifications_have_their_texts_and_only_filled_placeholders() {
    let en = catalogue(Locale::En);
    for slug in goodgo_api::error::PROBLEM_SLUGS {
        assert!(
            en.contains_key(&format!("problem-{slug}")),
            "problem-{slug}"
        );
    }
    for kind in Kind::ALL {
        let key = kind.as_str().replace('.', "-");
        let mut filled: BTreeSet<String> = ["name", "email"].map(String::from).into();
        filled.extend(kind.fields().iter().map(|f| f.to_string()));
        for part in ["subject", "body"] {
            let vars = en
                .get(&format!("{key}-{part}"))
                .unwrap_or_else(|| panic!("{key}-{part}"));
            assert!(
                vars.is_subset(&filled),
                "{key}-{part} uses {vars:?}, filled {filled:?}"
            );
        }
    }
    for key in ["email-greeting", "email-footer"] {
        assert!(en[key].is_subset(&["name".to_string(), "email".to_string()].into()));
    }
    let quota = &en["detail-quota-exceeded"];
    assert_eq!(quota, &["plan", "quota"].map(String::from).into());
}

//! The telnet stream parser and the DrayTek console parsers: any bytes,
//! split anywhere across reads, parse the same, never panic, and give a
//! bounded number of finite values.

#![no_main]

use libfuzzer_sys::fuzz_target;
use netmeter::upstream::sources::draytek::{
    MAX_LINE_VALUES, clean_output, parse_dsl_more, parse_dsl_status, parse_wan_status,
    parse_wan_uptime,
};
use netmeter::upstream::sources::telnet::{Parser, Pattern, find};

fuzz_target!(|data: &[u8]| {
    // The first byte says where the stream is split in two reads.
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let cut = usize::from(cut) * stream.len() / 255;
    let (mut text, mut replies) = (Vec::new(), Vec::new());
    Parser::new().feed(stream, &mut text, &mut replies);
    let mut parser = Parser::new();
    let (mut split_text, mut split_replies) = (Vec::new(), Vec::new());
    parser.feed(&stream[..cut], &mut split_text, &mut split_replies);
    parser.feed(&stream[cut..], &mut split_text, &mut split_replies);
    assert_eq!(text, split_text);
    assert_eq!(replies, split_replies);
    assert!(text.len() <= stream.len());
    // Each option answered at most once per WILL and per DO.
    assert!(replies.len() <= 2 * 256 * 3);

    for pattern in [
        Pattern::Prompt,
        Pattern::LineEnd("Password:"),
        Pattern::Anywhere("--- MORE ---"),
    ] {
        if let Some((start, end)) = find(&text, pattern) {
            assert!(start <= end && end <= text.len());
        }
    }

    let clean = clean_output(&text, "vdsl status more");
    assert_ne!(parse_wan_uptime(&clean), Some(0));
    for values in [
        parse_dsl_more(&clean),
        parse_dsl_status(&clean),
        parse_wan_status(&clean),
    ] {
        assert!(values.len() <= MAX_LINE_VALUES);
        assert!(
            values
                .iter()
                .all(|v| v.value.is_finite() && !v.name.is_empty())
        );
    }
});

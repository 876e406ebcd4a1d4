//! The default language model (SmolLM2-135M-Instruct Q4_1): its tokenizer and chat template as
//! read from the GGUF, reproducible generation, and `folio ask` end to end.

use std::fs;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock};

use folio::llm::template::Message;
use folio::llm::{GenerateOptions, Llm};

use crate::common::{folio, models_dir, pdf_doc, save};

/// The default GGUF, fetched if needed, loaded once; generation needs `&mut`.
fn llm() -> &'static Mutex<Llm> {
    static L: OnceLock<Mutex<Llm>> = OnceLock::new();
    L.get_or_init(|| {
        let dir = folio::models::ensure(&folio::models::SMOLLM2, &models_dir(), &mut |m| {
            eprintln!("{m}")
        })
        .expect("fetching SmolLM2");
        let path = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
        Mutex::new(Llm::load(&path).expect("loading SmolLM2"))
    })
}

/// Token ids llama.cpp's `llama-tokenize --no-bos` gives for these strings on the same GGUF
/// (built by ../shared/tools/llama-bench.sh): the reference our GGUF tokenizer must match.
const LLAMA_CPP_IDS: &[(&str, &[u32])] = &[
    ("Hello world", &[19556, 905]),
    (
        "The termination notice period is sixty (60) days.",
        &[
            504, 26938, 4887, 1657, 314, 20992, 365, 38, 32, 25, 2009, 30,
        ],
    ),
    (
        "fn main() {\n    println!(\"{}\", 42 + 1337);\n}",
        &[
            7853, 1085, 1000, 1662, 472, 1628, 34115, 17, 43331, 1002, 216, 36, 34, 1232, 216, 33,
            35, 35, 39, 4258, 198, 109,
        ],
    ),
    (
        "Café, naïve façade — déjà vu; Straße 12.",
        &[
            51, 1939, 2756, 28, 15486, 46494, 40852, 1841, 32564, 90, 16739, 386, 101, 43, 19144,
            34878, 85, 216, 33, 34, 30,
        ],
    ),
    (
        "Emoji: 😀🚀 and CJK 日本語テキスト",
        &[
            10809, 33777, 42, 40303, 218, 10813, 244, 218, 284, 37845, 59, 17097, 241, 115, 40993,
            179, 120, 248, 11100, 224, 10391, 251, 10391, 134, 11100, 226,
        ],
    ),
    (
        "  leading spaces\ttabs\n\nnewlines  ",
        &[216, 2899, 5600, 197, 100, 7366, 198, 198, 2241, 5110, 256],
    ),
    (
        "<|im_start|>user\nHi<|im_end|>\n",
        &[1, 4093, 198, 26843, 2, 198],
    ),
    (
        "I'm sure they'll say we've done it, won't they?",
        &[
            57, 5248, 2090, 502, 3060, 1643, 392, 3543, 2294, 357, 28, 3763, 982, 502, 47,
        ],
    ),
    (
        "Prices: $1,234.56 vs €99; 3.14159e-10; 2025-03-17",
        &[
            64, 12855, 42, 1885, 33, 28, 34, 35, 36, 30, 37, 38, 6375, 24927, 41, 41, 43, 216, 35,
            30, 33, 36, 33, 37, 41, 85, 29, 33, 32, 43, 216, 34, 32, 34, 37, 29, 32, 35, 29, 33,
            39,
        ],
    ),
];

#[test]
fn gguf_tokenizer_matches_llama_cpp_and_round_trips() {
    let llm = llm().lock().unwrap();
    for (text, expected) in LLAMA_CPP_IDS {
        let ids = llm.encode_prompt(text).unwrap();
        assert_eq!(&ids, expected, "ids of {text:?}");
        if !text.contains("<|") {
            let back = llm.tokenizer().decode(&ids, false).unwrap();
            assert_eq!(&back, text, "round trip");
        }
    }
    // The chat template's markers are single tokens.
    for special in ["<|im_start|>", "<|im_end|>", "<|endoftext|>"] {
        assert_eq!(llm.encode_prompt(special).unwrap().len(), 1, "{special}");
    }
    assert!(llm.is_stop(llm.tokenizer().token_to_id("<|im_end|>").unwrap()));
}

#[test]
fn chat_prompt_follows_the_models_template() {
    let llm = llm().lock().unwrap();
    let with_system = llm
        .render(&[
            Message::new("system", "Be brief."),
            Message::new("user", "Hi"),
        ])
        .unwrap();
    assert_eq!(
        with_system,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    // Without a system turn, SmolLM2's template adds its own.
    let bare = llm.render(&[Message::new("user", "Hi")]).unwrap();
    assert_eq!(
        bare,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    assert_eq!(llm.info().architecture, "llama");
    assert!(llm.info().quantization.contains("Q8_0"), "{:?}", llm.info());
}

#[test]
fn greedy_generation_is_reproducible() {
    let mut llm = llm().lock().unwrap();
    let prompt = llm
        .render(&[Message::new("user", "Name three colours.")])
        .unwrap();
    let ids = llm.encode_prompt(&prompt).unwrap();
    let opts = GenerateOptions {
        max_tokens: 24,
        ..GenerateOptions::default()
    };
    let cancel = AtomicBool::new(false);
    let mut streamed = String::new();
    let a = llm
        .generate(&ids, &opts, &cancel, &mut |t| streamed.push_str(t))
        .unwrap();
    let b = llm.generate(&ids, &opts, &cancel, &mut |_| {}).unwrap();
    assert!(a.generated_tokens > 0);
    assert_eq!(a.text, b.text);
    assert_eq!(streamed, a.text, "the stream adds up to the answer");
    // Cancelling stops after the first token.
    let stop = AtomicBool::new(true);
    let c = llm.generate(&ids, &opts, &stop, &mut |_| {}).unwrap();
    assert_eq!(c.generated_tokens, 1);
}

#[test]
fn ask_answers_with_checked_citations_or_abstains() {
    let t = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(t.path()).unwrap().join("docs");
    fs::create_dir(&root).unwrap();
    fs::write(
        root.join("falcon.md"),
        "# Project Falcon\n\n## Budget\n\nThe budget for Project Falcon is 1.2 million euros, approved in March.\n",
    )
    .unwrap();
    save(
        pdf_doc(&[
            &[
                "MASTER SERVICES AGREEMENT",
                "between Acme Corp and Globex Ltd.",
            ],
            &[
                "Termination.",
                "Either party may terminate this agreement",
                "with ninety days written notice.",
            ],
        ]),
        &root.join("contract.pdf"),
    );
    let idx = t.path().join("idx");
    let root_s = root.to_string_lossy().into_owned();
    let idx_s = idx.to_string_lossy().into_owned();
    assert!(
        folio(t.path(), &["index", &root_s, "--index", &idx_s], None)
            .status
            .success()
    );

    // The question comes from stdin (`ask -`), as a script would pipe it; the exit status says
    // whether the documents answered (0) or not (3).
    let run = |q: &str, status: i32| -> serde_json::Value {
        let out = folio(
            t.path(),
            &["ask", "-", "--index", &idx_s, "--json"],
            Some(q),
        );
        assert_eq!(out.status.code(), Some(status), "{q}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
        serde_json::from_str(&stdout).unwrap()
    };

    let a = run("What is the budget for Project Falcon?\n", 0);
    let passages = a["passages"].as_array().unwrap();
    assert!(!passages.is_empty());
    for c in a["citations"].as_array().unwrap() {
        let n = c["n"].as_u64().unwrap() as usize;
        if c["valid"].as_bool().unwrap() {
            assert!(n >= 1 && n <= passages.len(), "{c}");
            let p = &c["passage"];
            assert_eq!(
                p,
                &passages[n - 1],
                "a citation carries the passage it names"
            );
            assert!(p["path"].as_str().unwrap().starts_with(&root_s));
            if p["path"].as_str().unwrap().ends_with(".pdf") {
                assert!(p["page"].as_u64().is_some(), "PDF citations carry a page");
            }
            if c["supported"].as_bool().unwrap() {
                let quote = c["quote"].as_str().unwrap();
                assert!(!quote.is_empty());
                assert!(
                    p["text"].as_str().unwrap().contains(quote),
                    "the quote is in the passage"
                );
            }
        } else {
            assert!(c["passage"].is_null());
        }
    }
    // The document answers this one: the answer stands, and a checked citation names the
    // Markdown note with the sentence that supports it (whatever markers the model wrote).
    assert_eq!(a["abstained"], false, "{a}");
    assert!(
        a["citations"].as_array().unwrap().iter().any(|c| {
            c["supported"] == true
                && c["passage"]["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("falcon.md"))
                && c["quote"]
                    .as_str()
                    .is_some_and(|q| q.contains("1.2 million"))
        }),
        "{a}"
    );
    assert!(a["answer"].as_str().unwrap().contains('['), "{a}");
    assert!(a["timings"]["prompt_tokens"].as_u64().unwrap() > 0);

    // Nothing in these documents is about this: folio must not answer from the model's memory.
    let none = run("What is the boiling point of liquid nitrogen?", 3);
    assert_eq!(none["abstained"], true, "{none}");
    assert_eq!(none["answer"], "The documents do not say.");

    // Text mode streams the answer and lists the sources it cites (or, abstaining, the
    // closest passages); 0 answered, 3 abstained: the 135M model may do either here.
    let ask_text = |extra: &[&str]| {
        let mut args = vec![
            "ask",
            "How much notice ends the Acme agreement?",
            "--index",
            &idx_s,
        ];
        args.extend(extra);
        let out = folio(t.path(), &args, None);
        assert!(matches!(out.status.code(), Some(0 | 3)), "{out:?}");
        out
    };
    let text = String::from_utf8(ask_text(&[]).stdout).unwrap();
    assert!(
        text.contains("sources:") || text.contains("closest passages:"),
        "{text}"
    );
    assert!(!text.contains('\x1b'), "no colours off a terminal: {text}");
    // `--color always` colours a pipe too; `--quiet` leaves stderr empty.
    let out = ask_text(&["--color", "always", "-q"]);
    assert!(String::from_utf8(out.stdout).unwrap().contains("\x1b[1m"));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An empty question on stdin is a clear error.
    let out = folio(t.path(), &["ask", "-", "--index", &idx_s], Some("  \n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the question on stdin"));
}

/// Evidence spans lie inside their passages: the quote is the passage's text at the span.
fn assert_evidence_inside(a: &serde_json::Value) {
    for e in a["evidence"].as_array().unwrap() {
        let quote = e["quote"].as_str().unwrap();
        let p = &e["passage"];
        let text: Vec<char> = p["text"].as_str().unwrap().chars().collect();
        let (ps, pe) = (
            p["span"][0].as_u64().unwrap() as usize,
            p["span"][1].as_u64().unwrap() as usize,
        );
        let (s, end) = (
            e["span"][0].as_u64().unwrap() as usize,
            e["span"][1].as_u64().unwrap() as usize,
        );
        assert!(
            ps <= s && s < end && end <= pe,
            "span inside its passage: {e}"
        );
        let at: String = text[s - ps..end - ps].iter().collect();
        assert_eq!(at, quote, "the quote is the passage text at its span");
        assert!(e["n"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn the_answer_policy_shows_evidence_first_and_never_hides_it() {
    let t = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(t.path()).unwrap().join("docs");
    fs::create_dir(&root).unwrap();
    fs::write(
        root.join("falcon.md"),
        "# Project Falcon\n\n## Budget\n\nThe budget for Project Falcon is 1.2 million euros, approved in March.\n\n## Team\n\nThe project is led by Maria Lopez from the Lisbon office. Weekly status meetings are held on Tuesdays.\n",
    )
    .unwrap();
    fs::write(
        root.join("msa.txt"),
        "MASTER SERVICES AGREEMENT\n\n4. Payment\nAcme shall pay each invoice within thirty (30) days of receipt. Late\npayments accrue interest of one percent per month.\n\n9. Termination\nEither party may terminate this Agreement for convenience on ninety (90)\ndays written notice to the other party.\n",
    )
    .unwrap();
    let idx = t.path().join("idx");
    let root_s = root.to_string_lossy().into_owned();
    let idx_s = idx.to_string_lossy().into_owned();
    assert!(
        folio(t.path(), &["index", &root_s, "--index", &idx_s], None)
            .status
            .success()
    );
    let run = |home: &std::path::Path, q: &str| -> serde_json::Value {
        let out = folio(home, &["ask", q, "--index", &idx_s, "--json"], None);
        let a: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // The exit status tells an abstention (3) from an answer (0).
        let want = if a["abstained"] == true { 3 } else { 0 };
        assert_eq!(out.status.code(), Some(want), "{a}");
        a
    };

    // A question the documents answer: the evidence's first span holds the answer, and what
    // leads is backed by the passages, whoever wrote it.
    let a = run(t.path(), "How many days does Acme have to pay an invoice?");
    assert_evidence_inside(&a);
    let top = a["evidence"][0]["quote"].as_str().unwrap();
    assert!(top.contains("thirty (30) days"), "{a}");
    assert_ne!(a["outcome"], "abstained", "{a}");
    assert_eq!(a["abstained"], false);
    assert!(
        a["citations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["supported"] == true
                && c["passage"]["path"].as_str().unwrap().ends_with("msa.txt")),
        "{a}"
    );
    if a["outcome"] == "answered" {
        assert_eq!(a["reason"], "supported");
    } else {
        assert!(
            a["answer"].as_str().unwrap().contains("thirty (30) days"),
            "{a}"
        );
    }
    assert!(
        a["timings"]["prompt_tokens"].as_u64().unwrap() < 600,
        "a focused prompt: {a}"
    );

    // The same question with a model told to refuse: the evidence leads, labelled as quoted,
    // and the model's refusal is kept below it.
    let refusing = tempfile::tempdir().unwrap();
    fs::create_dir(refusing.path().join("prompts")).unwrap();
    // The bundled model follows a short instruction more readily than a long one.
    fs::write(
        refusing.path().join("prompts/system.txt"),
        "You are a parrot. You repeat: The documents do not say.",
    )
    .unwrap();
    fs::write(
        refusing.path().join("prompts/question.txt"),
        "Repeat: The documents do not say.\n",
    )
    .unwrap();
    let b = run(
        refusing.path(),
        "How many days does Acme have to pay an invoice?",
    );
    assert_evidence_inside(&b);
    assert_eq!(b["outcome"], "evidence", "{b}");
    assert_eq!(b["reason"], "model_abstained", "{b}");
    assert_eq!(b["abstained"], false);
    assert!(
        b["answer"].as_str().unwrap().contains("thirty (30) days"),
        "{b}"
    );
    // The model's refusal is kept, below the evidence.
    assert!(!b["model_answer"].as_str().unwrap().is_empty(), "{b}");
    assert_eq!(b["model_checked"], b["model_answer"], "{b}");
    assert!(
        b["citations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["supported"] == true
                && c["quote"].as_str().unwrap().contains("thirty (30) days")),
        "{b}"
    );
    // In text mode the evidence comes first, then the model, then the answer from the evidence.
    let out = folio(
        refusing.path(),
        &[
            "ask",
            "How many days does Acme have to pay an invoice?",
            "--index",
            &idx_s,
        ],
        None,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let ev = text
        .find("Evidence, quoted from the documents")
        .expect(&text);
    let model = text.find("The model:").expect(&text);
    let lead = text.find("Answer, quoted from the documents").expect(&text);
    assert!(ev < model && model < lead, "{text}");

    // Nothing here is about this: retrieval and evidence are both weak, folio abstains, and
    // the closest passages it lists are real.
    let c = run(t.path(), "What is the boiling point of liquid nitrogen?");
    assert_eq!(c["outcome"], "abstained", "{c}");
    assert_eq!(c["abstained"], true);
    assert_eq!(c["answer"], "The documents do not say.");
    assert!(c["evidence"].as_array().unwrap().is_empty());
    for p in c["passages"].as_array().unwrap() {
        assert!(p["path"].as_str().unwrap().starts_with(&root_s));
    }
}

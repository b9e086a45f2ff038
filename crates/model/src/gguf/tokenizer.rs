//! Builds a `tokenizers::Tokenizer` from GGUF tokenizer metadata.
//!
//! GGUF files carry no `tokenizer.json`; the tokenizer is described by the
//! `tokenizer.*` keys listed in ggml's `docs/gguf.md` ("Tokenizer" section):
//! `tokenizer.ggml.model` (the algorithm), `tokenizer.ggml.tokens` (token
//! strings, id = position), `tokenizer.ggml.merges` (BPE merges as
//! `"left right"`), `tokenizer.ggml.token_type` (1 normal, 2 unknown,
//! 3 control, 4 user-defined, 5 unused, 6 byte), the special token ids and
//! `tokenizer.ggml.pre` (llama.cpp's name for the pre-tokenizer).
//!
//! Only byte-level BPE (`tokenizer.ggml.model == "gpt2"`) is supported.
//! Control tokens become special added tokens and user-defined tokens plain
//! added tokens, so that both are matched whole in the input text.

use std::collections::HashSet;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use super::error::GgufError;
use super::reader::GgufFile;
use super::types::{GgufArray, GgufValue};

/// `tokenizer.ggml.token_type` value of control tokens (e.g. `<|im_end|>`).
const TOKEN_TYPE_CONTROL: i32 = 3;
/// `tokenizer.ggml.token_type` value of user-defined tokens.
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// Special-token information read from GGUF tokenizer metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GgufTokenizerInfo {
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos_id: Option<u32>,
    /// `tokenizer.chat_template` (a Jinja template).
    pub chat_template: Option<String>,
}

impl GgufTokenizerInfo {
    /// Reads the special token ids and chat template from `file`.
    ///
    /// # Errors
    /// [`GgufError::WrongType`] if one of the keys has an unexpected type.
    pub fn from_gguf(file: &GgufFile) -> Result<GgufTokenizerInfo, GgufError> {
        Ok(GgufTokenizerInfo {
            bos_id: file.get_u32_opt("tokenizer.ggml.bos_token_id")?,
            eos_id: file.get_u32_opt("tokenizer.ggml.eos_token_id")?,
            chat_template: file
                .get_str_opt("tokenizer.chat_template")?
                .map(str::to_string),
        })
    }
}

/// Builds the tokenizer described by `file`'s metadata.
///
/// # Errors
/// [`GgufError::UnsupportedTokenizer`] for tokenizer models other than
/// `gpt2` or unknown `tokenizer.ggml.pre` values;
/// [`GgufError::MissingKey`] / [`GgufError::WrongType`] for absent or
/// mistyped keys; [`GgufError::Tokenizer`] for inconsistent metadata (e.g.
/// a merge naming an unknown token, or an out-of-range special token id).
pub fn tokenizer_from_gguf(file: &GgufFile) -> Result<Tokenizer, GgufError> {
    let model = file.get_str("tokenizer.ggml.model")?;
    match model {
        "gpt2" => byte_level_bpe(file),
        other => Err(GgufError::UnsupportedTokenizer {
            file: file.path().to_path_buf(),
            what: format!(
                "tokenizer.ggml.model = '{other}' (only 'gpt2' byte-level BPE is supported)"
            ),
        }),
    }
}

/// The pre-tokenizer for a `tokenizer.ggml.pre` value. Add new llama.cpp
/// pre-tokenizer names here.
fn pre_tokenizer(file: &GgufFile, pre: Option<&str>) -> Result<PreTokenizerWrapper, GgufError> {
    let byte_level = ByteLevel::new(false, true, true);
    Ok(match pre {
        None | Some("default") | Some("gpt2") => byte_level.into(),
        Some("smollm") => Sequence::new(vec![Digits::new(true).into(), byte_level.into()]).into(),
        Some(other) => {
            return Err(GgufError::UnsupportedTokenizer {
                file: file.path().to_path_buf(),
                what: format!("tokenizer.ggml.pre = '{other}'"),
            })
        }
    })
}

/// GPT-2's reversible byte → printable char mapping (`bytes_to_unicode`):
/// printable Latin-1 bytes map to themselves, the others to U+0100.. in order.
fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).unwrap_or('\u{FFFD}');
    }
    table
}

/// Converts a token to byte-level spelling if it uses characters outside the
/// byte-level alphabet (some converters store added tokens as raw text).
fn byte_level_spelling(token: &str, table: &[char; 256], alphabet: &HashSet<char>) -> String {
    if token.chars().all(|c| alphabet.contains(&c)) {
        token.to_string()
    } else {
        token.bytes().map(|b| table[usize::from(b)]).collect()
    }
}

fn tok_err(file: &GgufFile, message: impl Into<String>) -> GgufError {
    GgufError::Tokenizer {
        file: file.path().to_path_buf(),
        message: message.into(),
    }
}

fn byte_level_bpe(file: &GgufFile) -> Result<Tokenizer, GgufError> {
    let tokens = file.get_str_array("tokenizer.ggml.tokens")?;
    let merges_raw = file.get_str_array("tokenizer.ggml.merges")?;
    let token_types: &[i32] = match file.get("tokenizer.ggml.token_type") {
        None => &[],
        Some(GgufValue::Array(GgufArray::I32(t))) => t,
        Some(_) => file.get_i32_array("tokenizer.ggml.token_type")?,
    };
    if !token_types.is_empty() && token_types.len() != tokens.len() {
        return Err(tok_err(
            file,
            format!(
                "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
                token_types.len(),
                tokens.len()
            ),
        ));
    }
    let n_tokens = u32::try_from(tokens.len()).map_err(|_| {
        tok_err(
            file,
            format!("{} tokens do not fit in u32 ids", tokens.len()),
        )
    })?;

    let table = byte_to_char_table();
    let alphabet: HashSet<char> = table.iter().copied().collect();
    let spelled: Vec<String> = tokens
        .iter()
        .map(|t| byte_level_spelling(t, &table, &alphabet))
        .collect();
    let vocab: Vocab = spelled.iter().cloned().zip(0..n_tokens).collect();

    // Validate merges here: the BPE builder indexes a buffer sized by the
    // longest token and can panic on a merge whose result is not in the vocabulary.
    let mut merges: Merges = Vec::with_capacity(merges_raw.len());
    for (i, m) in merges_raw.iter().enumerate() {
        let bad = |why: &str| tok_err(file, format!("tokenizer.ggml.merges[{i}] = '{m}' {why}"));
        let (a, b) = m
            .split_once(' ')
            .ok_or_else(|| bad("is not of the form 'a b'"))?;
        if !vocab.contains_key(a) || !vocab.contains_key(b) {
            return Err(bad("names a token that is not in the vocabulary"));
        }
        if !vocab.contains_key(&format!("{a}{b}")) {
            return Err(bad("merges into a token that is not in the vocabulary"));
        }
        merges.push((a.to_string(), b.to_string()));
    }

    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| tok_err(file, format!("invalid BPE vocabulary/merges: {e}")))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer(
        file,
        file.get_str_opt("tokenizer.ggml.pre")?,
    )?));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    // Control tokens must be spelled in the byte-level alphabet: one that is
    // not is a converter mislabel and would enlarge the vocabulary.
    let control: Vec<AddedToken> = tokens
        .iter()
        .zip(token_types)
        .filter(|(t, &ty)| ty == TOKEN_TYPE_CONTROL && t.chars().all(|c| alphabet.contains(&c)))
        .map(|(t, _)| AddedToken::from(t.clone(), true).normalized(false))
        .collect();
    let user: Vec<AddedToken> = tokens
        .iter()
        .zip(token_types)
        .filter(|(_, &ty)| ty == TOKEN_TYPE_USER_DEFINED)
        .map(|(t, _)| AddedToken::from(t.clone(), false).normalized(false))
        .collect();
    tokenizer
        .add_special_tokens(control)
        .map_err(|e| tok_err(file, format!("cannot add control tokens: {e}")))?;
    tokenizer
        .add_tokens(user)
        .map_err(|e| tok_err(file, format!("cannot add user-defined tokens: {e}")))?;

    let add_bos = file
        .get_bool_opt("tokenizer.ggml.add_bos_token")?
        .unwrap_or(false);
    let add_eos = file
        .get_bool_opt("tokenizer.ggml.add_eos_token")?
        .unwrap_or(false);
    if add_bos || add_eos {
        let processor = bos_eos_processor(file, &spelled, add_bos, add_eos)?;
        tokenizer.with_post_processor(Some(processor));
    }
    Ok(tokenizer)
}

/// A post-processor that adds BOS before and/or EOS after each sequence.
fn bos_eos_processor(
    file: &GgufFile,
    spelled: &[String],
    add_bos: bool,
    add_eos: bool,
) -> Result<TemplateProcessing, GgufError> {
    let info = GgufTokenizerInfo::from_gguf(file)?;
    let special = |id: Option<u32>, key: &str| -> Result<(String, u32), GgufError> {
        let id = id.ok_or_else(|| tok_err(file, format!("{key} is required by add_*_token")))?;
        let tok = usize::try_from(id)
            .ok()
            .and_then(|i| spelled.get(i))
            .ok_or_else(|| {
                tok_err(
                    file,
                    format!("{key} = {id} is out of range ({} tokens)", spelled.len()),
                )
            })?;
        // Template pieces are parsed from "token:type_id" strings.
        if tok.contains(':') || tok.starts_with('$') {
            return Err(tok_err(
                file,
                format!("{key} token '{tok}' cannot be used in a template"),
            ));
        }
        Ok((tok.clone(), id))
    };
    let bos = add_bos
        .then(|| special(info.bos_id, "tokenizer.ggml.bos_token_id"))
        .transpose()?;
    let eos = add_eos
        .then(|| special(info.eos_id, "tokenizer.ggml.eos_token_id"))
        .transpose()?;
    let template = |seq: &str, type_id: u32| -> Vec<String> {
        let mut pieces = Vec::new();
        if let Some((t, _)) = &bos {
            pieces.push(format!("{t}:{type_id}"));
        }
        pieces.push(format!("{seq}:{type_id}"));
        if let Some((t, _)) = &eos {
            pieces.push(format!("{t}:{type_id}"));
        }
        pieces
    };
    let single = template("$A", 0);
    let mut pair = single.clone();
    pair.extend(template("$B", 1));
    let mut specials: Vec<(String, u32)> = bos.iter().chain(eos.iter()).cloned().collect();
    specials.dedup();
    let err = |e: String| tok_err(file, format!("invalid BOS/EOS template: {e}"));
    TemplateProcessing::builder()
        .try_single(single)
        .map_err(err)?
        .try_pair(pair)
        .map_err(err)?
        .special_tokens(specials)
        .build()
        .map_err(|e| err(e.to_string()))
}

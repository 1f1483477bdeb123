#!/usr/bin/env node
// llamacpp-bench.mjs — llama.cpp (through node-llama-cpp, CPU only) side of bench/vs-llamacpp.
//
//   node bench/llamacpp-bench.mjs --bench MODEL [-t T] [-p P] [-n N] [--fa auto|on|off] [--no-warmup]
//       one run of llama-bench's two tests, as JSON on stdout:
//       pp: P random tokens (BOS first when the vocabulary adds one) decoded as one batch
//           (batch 512), logits for the last token only; tokens/s = P / time.
//       tg: from an empty context, N single-token decodes of random tokens, logits each time;
//           tokens/s = N / time.
//       Like llama-bench, a warmup (one pp of P tokens and one tg token) runs first, and the
//       context is cleared before each test. Timer: process.hrtime.bigint().
//   node bench/llamacpp-bench.mjs --check MODEL [-t T] [--prompt TEXT] [-n N] [--top K]
//       loads the model, prints vocabulary facts, the prompt's tokens, the top K next-token
//       logits and N greedy tokens, as JSON.
//   node bench/llamacpp-bench.mjs --anelm-record OUT.json MODEL [-t T] [-p P] [-n N]
//       turns the JSON of `anelm bench -o json` (a list of {n_prompt, n_gen, tokens_per_s, ...})
//       into one record like --bench's, for the report.
//   node bench/llamacpp-bench.mjs --report RESULTS.jsonl
//       prints the markdown tables of bench/vs-llamacpp from its per-run records.
import process from "node:process";
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath} from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

function die(msg, code = 1) {
    process.stderr.write(`llamacpp-bench: ${msg}\n`);
    process.exit(code);
}

function parseArgs(argv) {
    const o = {mode: null, model: null, threads: 2, p: 512, n: 128, fa: "auto", warmup: true,
               prompt: "The quick brown fox jumps over the lazy dog.", top: 5, seed: 1};
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const val = () => {
            if (i + 1 >= argv.length) die(`option ${a} needs a value`);
            return argv[++i];
        };
        const int = (lo) => {
            const s = val(), v = Number(s);
            if (!Number.isInteger(v) || v < lo) die(`option ${a}: '${s}' is not an integer >= ${lo}`);
            return v;
        };
        if (a === "--bench" || a === "--check" || a === "--report") {
            o.mode = a.slice(2);
            o.model = val();
        } else if (a === "--anelm-record") {
            o.mode = "anelm-record";
            o.file = val();
            o.model = val();
        } else if (a === "--as") o.as = val(); /* a pair: the file anelm ran, when not MODEL */
        else if (a === "-t") o.threads = int(1);
        else if (a === "-p") o.p = int(1);
        else if (a === "-n") o.n = int(0);
        else if (a === "--top") o.top = int(1);
        else if (a === "--seed") o.seed = int(0);
        else if (a === "--prompt") o.prompt = val();
        else if (a === "--fa") {
            o.fa = val();
            if (!["auto", "on", "off"].includes(o.fa)) die(`--fa: expected auto, on or off`);
        } else if (a === "--no-warmup") o.warmup = false;
        else if (a === "-h" || a === "--help") {
            process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n")
                .filter((l) => l.startsWith("//")).map((l) => l.slice(3)).join("\n") + "\n");
            process.exit(0);
        } else die(`unknown argument '${a}' (see --help)`);
    }
    if (!o.mode) die("one of --bench MODEL, --check MODEL, --anelm-record OUT MODEL, --report FILE is required");
    return o;
}

async function loadLlama() {
    let mod;
    try {
        mod = await import(path.join(here, "node_modules", "node-llama-cpp", "dist", "index.js"));
    } catch (e) {
        die(`node-llama-cpp is not installed in bench/node_modules (run bench/vs-llamacpp once): ${e.message}`);
    }
    // CPU only, the prebuilt binaries only (never a build from source), and no thread splitting:
    // maxThreads 0 makes the context's thread count the count actually used.
    const llama = await mod.getLlama({gpu: false, build: "never", maxThreads: 0, logLevel: "error",
                                      progressLogs: false});
    return {mod, llama};
}

// A small deterministic generator for token ids (xorshift32).
function rng(seed) {
    let s = (seed >>> 0) || 0x9e3779b9;
    return () => {
        s ^= s << 13; s >>>= 0;
        s ^= s >>> 17;
        s ^= s << 5; s >>>= 0;
        return s;
    };
}

const now = () => process.hrtime.bigint();
const secs = (t0, t1) => Number(t1 - t0) / 1e9;

async function openModel(llama, o, contextSize) {
    const t0 = now();
    const model = await llama.loadModel({modelPath: o.model, gpuLayers: 0, useMmap: true});
    const flashAttention = o.fa === "auto" ? "auto" : o.fa === "on";
    const context = await model.createContext({contextSize, batchSize: 512, threads: o.threads, flashAttention,
                                               sequences: 1});
    return {model, context, load_s: secs(t0, now())};
}

const NEXT = {generateNext: {token: true}};

// One decode of all tokens with logits for the last one (llama_batch_get_one semantics).
async function decodeBatch(seq, tokens) {
    const items = tokens.slice();
    items[items.length - 1] = [tokens[tokens.length - 1], NEXT];
    await seq.controlledEvaluate(items);
}

async function bench(o) {
    const {llama} = await loadLlama();
    const {model, context, load_s} = await openModel(llama, o, o.p + o.n + 1);
    const seq = context.getSequence();
    const nVocab = Number(model.fileInfo.metadata?.tokenizer?.ggml?.tokens?.length ?? 0);
    if (!nVocab) die("cannot read the vocabulary size");
    const rand = rng(o.seed);
    const randTok = () => rand() % nVocab;
    const bos = model.tokens.bos;
    const first = () => (model.tokens.shouldPrependBosToken && bos != null ? bos : randTok());
    const promptTokens = () => {
        const t = [first()];
        while (t.length < o.p) t.push(randTok());
        return t;
    };
    const runPP = async () => {
        await seq.clearHistory();
        const toks = promptTokens();
        const t0 = now();
        await decodeBatch(seq, toks);
        return secs(t0, now());
    };
    const runTG = async (n) => {
        await seq.clearHistory();
        let tok = first();
        const t0 = now();
        for (let i = 0; i < n; i++) {
            await seq.controlledEvaluate([[tok, NEXT]]);
            tok = randTok();
        }
        return secs(t0, now());
    };
    if (o.warmup) {
        await runPP();
        if (o.n > 0) await runTG(1);
    }
    const pp_s = await runPP();
    const tg_s = o.n > 0 ? await runTG(o.n) : 0;
    const out = {
        engine: "llama.cpp", via: "node-llama-cpp", model: o.model, threads: o.threads,
        ...(o.as ? {anelm_model: o.as} : {}),
        n_prompt: o.p, n_gen: o.n, n_vocab: nVocab, context_size: context.contextSize, batch_size: 512,
        flash_attention: context.flashAttention, load_s,
        pp_s, pp_tok_s: o.p / pp_s, tg_s, tg_tok_s: o.n > 0 ? o.n / tg_s : null,
    };
    process.stdout.write(JSON.stringify(out) + "\n");
    await context.dispose();
    await model.dispose();
    await llama.dispose();
}

async function check(o) {
    const {llama} = await loadLlama();
    const {model, context, load_s} = await openModel(llama, o, 256);
    const seq = context.getSequence();
    const meta = model.fileInfo.metadata;
    let toks = model.tokenize(o.prompt);
    if (model.tokens.shouldPrependBosToken && model.tokens.bos != null) toks = [model.tokens.bos, ...toks];
    const items = toks.slice();
    items[items.length - 1] = [toks[toks.length - 1],
        {generateNext: {token: true, logits: {filter: {tokens: [], includeTop: o.top}}}}];
    const res = await seq.controlledEvaluate(items);
    const last = res[res.length - 1];
    const top = [...last.next.logits.entries()].slice(0, o.top).map(([id, v]) => [id, v]);
    const greedy = [];
    let tok = last.next.token;
    for (let i = 0; i < o.n && tok != null; i++) {
        greedy.push(tok);
        if (i + 1 === o.n) break;
        const r = await seq.controlledEvaluate([[tok, NEXT]]);
        tok = r[0].next.token;
    }
    const out = {
        engine: "llama.cpp", model: o.model, load_s, architecture: meta.general?.architecture,
        n_vocab: meta.tokenizer?.ggml?.tokens?.length, tokenizer: meta.tokenizer?.ggml?.model,
        bos: model.tokens.bos, eos: model.tokens.eos, add_bos: model.tokens.shouldPrependBosToken,
        train_context: model.trainContextSize, size_bytes: model.size,
        prompt: o.prompt, prompt_tokens: toks, top, greedy,
        greedy_text: model.detokenize(greedy),
    };
    process.stdout.write(JSON.stringify(out) + "\n");
    await context.dispose();
    await model.dispose();
    await llama.dispose();
}

// ---- anelm's numbers ---------------------------------------------------------------------------

function anelmRecord(o) {
    const rec = {engine: "anelm", model: o.model, threads: o.threads, n_prompt: o.p, n_gen: o.n,
                 pp_tok_s: null, tg_tok_s: null};
    if (o.as) rec.anelm_model = o.as; /* a pair: anelm ran this file, llama.cpp ran MODEL */
    let list;
    try {
        list = JSON.parse(fs.readFileSync(o.file, "utf8"));
        if (!Array.isArray(list)) list = [list];
    } catch (e) {
        rec.error = `unreadable anelm bench output: ${e.message}`;
        process.stdout.write(JSON.stringify(rec) + "\n");
        return;
    }
    for (const e of list) {
        if (e.n_prompt > 0 && !e.n_gen) rec.pp_tok_s = e.tokens_per_s;
        else if (e.n_gen > 0 && !e.n_prompt) rec.tg_tok_s = e.tokens_per_s;
        for (const k of ["type", "device", "fraction_of_limit"])
            if (e[k] != null) (rec[k] ??= {})[e.n_gen > 0 ? "tg" : "pp"] = e[k];
    }
    rec.raw = list;
    process.stdout.write(JSON.stringify(rec) + "\n");
}

// ---- report ----------------------------------------------------------------------------------

const median = (a) => {
    const s = a.slice().sort((x, y) => x - y), m = s.length >> 1;
    return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x) => (x == null || Number.isNaN(x) ? "—" : x >= 100 ? x.toFixed(1) : x.toFixed(2));

function report(file) {
    const recs = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
    /* a group: one llama.cpp file, and the file anelm ran when it was another (a pair) */
    const key = (r) => `${r.model}\u0000${r.anelm_model ?? ""}`;
    const models = [...new Set(recs.map(key))];
    for (const k of models) {
        const rs = recs.filter((r) => key(r) === k), m = rs[0].model;
        const P = rs[0].n_prompt, N = rs[0].n_gen, T = rs[0].threads;
        const get = (engine, key) => rs.filter((r) => r.engine === engine && r[key] != null).map((r) => r[key]);
        const pair = rs.find((r) => r.anelm_model);
        process.stdout.write(pair ? `\n### llama.cpp on ${path.basename(m)}, anelm on ${path.basename(pair.anelm_model)} (${T} threads)\n\n`
                                  : `\n### ${path.basename(m)} (${T} threads)\n\n`);
        process.stdout.write("| test | llama.cpp tok/s (median) | anelm tok/s (median) | anelm/llama.cpp |\n");
        process.stdout.write("|---|---:|---:|---:|\n");
        const rows = [[`pp${P}`, "pp_tok_s"]];
        if (N > 0) rows.push([`tg${N}`, "tg_tok_s"]);
        for (const [name, key] of rows) {
            const a = median(get("llama.cpp", key)), b = median(get("anelm", key));
            const ratio = Number.isFinite(a) && Number.isFinite(b) ? `${(b / a).toFixed(2)}x` : "—";
            process.stdout.write(`| ${name} | ${fmt(a)} | ${fmt(b)} | ${ratio} |\n`);
        }
        process.stdout.write("\nruns, in order (tok/s):\n\n");
        for (const r of rs) {
            const extra = r.error ? ` (${r.error})` : "";
            process.stdout.write(`- ${r.engine.padEnd(9)} pp${P} ${fmt(r.pp_tok_s)}` +
                (N > 0 ? `  tg${N} ${fmt(r.tg_tok_s)}` : "") + extra + "\n");
        }
        const fa = rs.find((r) => r.engine === "llama.cpp" && r.flash_attention != null);
        if (fa) process.stdout.write(`\nllama.cpp: node-llama-cpp, flash attention ${fa.flash_attention}, batch 512\n`);
    }
}

const o = parseArgs(process.argv.slice(2));
try {
    if (o.mode === "report") report(o.model);
    else if (o.mode === "anelm-record") anelmRecord(o);
    else {
        if (!fs.existsSync(o.model)) die(`no such model: ${o.model}`, 2);
        if (o.mode === "bench") await bench(o);
        else await check(o);
    }
} catch (e) {
    die(e.stack || String(e), 3);
}

"""
Stage 1: pretraining. Next-token prediction on plain text.

What it does: trains the small GPT in gpt_mini/model.py from random weights on
the tiny-world corpus (facts, stories, arithmetic) or on your own text file,
evaluates the held-out loss as it goes, compares it with a unigram baseline (a
model that knows token frequencies and nothing else), prints samples from fixed
prompts, and writes runs/pretrain/: model.pt, metrics.jsonl, loss.png, summary.json.

Default loss and schedule: next-token cross-entropy, AdamW (weight decay 0.1 on matrices,
betas 0.9/0.95), gradients clipped at 1.0, 1000 steps of 32 windows of 128 tokens, lr 3e-3
after 50 warm-up steps, cosine decay to a tenth.

What it simplifies: random windows of the token stream instead of an epoch-based
loader; a fixed held-out set; no gradient accumulation; fp32 on CPU.

Run it:
    python 01_pretrain.py                      # default, about 4-5 minutes on a 2-core CPU
    python 01_pretrain.py --quick              # seconds, tiny model
    python 01_pretrain.py --data my_text.txt   # your own text (blank line between documents)
    torchrun --nproc_per_node=2 01_pretrain.py # data-parallel (DDP) on 2 processes / GPUs
"""

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from gpt_mini import checkpoint, cli, data, evaluate, optim, report, runlog, runtime
from gpt_mini.model import GPT, GPTConfig
from gpt_mini.sampling import PRETRAIN_PROMPTS, complete
from gpt_mini.tokenizer import load_tokenizer

# ----------------------------------------------------------------------------- arguments
parser = cli.stage_parser(__doc__, "pretrain", steps=1000, batch_size=32, lr=3e-3, warmup=50, eval_every=100,
                          batch_unit="sequences (per process under DDP)")
parser.add_argument("--block-size", type=cli.int_arg(cli.MIN_BLOCK_SIZE), default=128, help="context length (tokens)")
parser.add_argument("--n-layer", type=cli.positive_int, default=4, help="transformer blocks")
parser.add_argument("--n-head", type=cli.positive_int, default=6, help="attention heads")
parser.add_argument("--n-embd", type=cli.positive_int, default=192, help="model width C (a multiple of --n-head)")
parser.add_argument("--position", default="rope", choices=["rope", "learned"], help="rotary or GPT-2's learned table")
parser.add_argument("--eval-windows", type=cli.positive_int, default=48, help="held-out windows per evaluation")
parser.add_argument("--resume", action="store_true", help="continue from --out/model.pt if it exists")
parser.add_argument("--stop-after", type=cli.positive_int, default=None, help="stop after this step (resume later)")
args = cli.parse(parser, steps=40, batch_size=8, n_layer=2, n_head=2, n_embd=64, eval_every=20, eval_windows=8)
if args.n_embd % args.n_head:
    parser.error(f"--n-embd must be a multiple of --n-head, got --n-embd {args.n_embd} and --n-head {args.n_head}")
device = runtime.pick_device(args.device)
rank, world_size, device = runtime.setup_distributed(device)
master = rank == 0  # only rank 0 evaluates, logs and writes
cli.prepare_out_dir(args.out)  # on rank 0: the others write nothing
runtime.seed_everything(args.seed)

# ----------------------------------------------------------------------------- data
enc = load_tokenizer()
train_tokens, val_tokens = data.pretraining_tokens(enc, args.data, args.block_size, say=runtime.print0)
val_x, val_y = data.fixed_windows(val_tokens, args.block_size, args.eval_windows)
unigram = data.unigram_loss(train_tokens, val_tokens, enc.n_vocab)

# ----------------------------------------------------------------------------- model
config = GPTConfig(vocab_size=enc.n_vocab, block_size=args.block_size, n_layer=args.n_layer,
                   n_head=args.n_head, n_embd=args.n_embd, rope=args.position == "rope")
model = GPT(config).to(device)
optimizer = optim.make_optimizer(model, args.lr)
ckpt_path = f"{args.out}/model.pt"
start_step, resumed = checkpoint.resume_if_asked(args.resume, ckpt_path, "pretrain", model, optimizer, device)
raw_model = model
if world_size > 1:
    model = DDP(model)
runtime.print0(f"device {device} x{world_size} | {config.num_params() / 1e6:.2f}M parameters | unigram {unigram:.3f}")


def held_out(step):
    return {"loss": evaluate.lm_loss(raw_model, val_x, val_y, args.batch_size), "unigram": unigram}


# ----------------------------------------------------------------------------- loop
progress = runlog.Progress(f"{args.out}/metrics.jsonl", args.steps, "pretrain", args.eval_every, held_out,
                           evaluate_first=start_step == 0, initial=start_step, with_throughput=True, master=master,
                           bar=not args.no_progress)
initial_loss = progress.first_eval["loss"] if progress.evals else (resumed or {}).get("initial_loss")
model.train()
for step in range(start_step, min(args.stop_after or args.steps, args.steps)):
    # the batch depends only on (seed, rank, step), so a resumed run sees the same batches
    g = data.step_generator(args.seed, step, rank)
    x, y = data.random_windows(train_tokens, args.batch_size, args.block_size, g)
    x, y = x.to(device), y.to(device)  # (B, T) inputs and their next tokens
    lr = optim.lr_at(step, args.steps, args.lr, args.warmup)
    optim.set_lr(optimizer, lr)
    with runtime.autocast(device):
        logits = model(x)  # (B, T, V)
    loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))  # next-token prediction
    optim.check_finite(loss, step)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    progress.step(step + 1, x.numel() * world_size, {"loss": loss.item(), "lr": lr, "grad_norm": grad_norm.item()})
    if master and runlog.is_eval_step(step + 1, args.eval_every, args.steps):
        checkpoint.save_checkpoint(ckpt_path, raw_model, "pretrain", step + 1, optimizer,
                                   extra={"args": vars(args), "initial_loss": initial_loss})
progress.close()  # training time ends here; evaluation below is not counted

# ----------------------------------------------------------------------------- evaluate and save
if master and progress.finished:  # (not after --stop-after: --resume goes on)
    final_loss = evaluate.lm_loss(raw_model, val_x, val_y, args.batch_size)
    samples = dict(zip(PRETRAIN_PROMPTS, complete(raw_model, enc, PRETRAIN_PROMPTS, device=device)))
    print(evaluate.pretraining_table(final_loss, unigram, samples))
    report.finish_stage("pretrain", args, device, progress.throughput, {
        "world_size": world_size, "params": config.num_params(), "held_out_loss_before": initial_loss,
        "held_out_loss": final_loss, "unigram_loss": unigram, "samples": samples})
runtime.cleanup_distributed()

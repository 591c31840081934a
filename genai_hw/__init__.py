"""genai_hw: build the pieces of generative AI with your own hands.

One module per topic; each exercise is one function whose docstring is its
assignment text. The notebooks in the homework folders call into this package.

- ``training``: a training loop from scratch (homework 1).
- ``ngrams``: Shannon's n-gram language model on Moby-Dick (homework 1).
- ``tokenizer``: byte-pair encoding, from bytes to tokens and back (homework 2).
- ``embeddings``: word vectors, cosine similarity, analogies, embedding matrices (homework 2).
- ``gan``: the losses and the training step of a generative adversarial network (homework 3).
- ``vae``: a variational autoencoder's sampling, KL term and loss (homework 3).
- ``diffusion``: noising schedules, the denoising loss and DDPM sampling (homework 4).
- ``attention``: softmax, self-attention, a transformer block and a tiny GPT (homework 5).
- ``sampling``: temperature, top-k and generating text one token at a time (homework 5).
- ``finetune``: counting parameters, LoRA adapters, a fine-tuning step and its memory cost (homework 6).
- ``data``: loaders for the offline data that ships with the package.
- ``utils``: seeding, device choice and the grader's cheap mode.

Submodules are imported on demand (``from genai_hw import ngrams``), so that
importing the package never pulls in heavy libraries.
"""

from __future__ import annotations

__version__ = "0.1.0"

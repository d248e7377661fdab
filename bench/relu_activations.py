#!/usr/bin/env python3
"""Post-ReLU activations of a real pretrained network on real audio, for the sparse (bitmask) codec's benchmarks.

The network: Silero VAD's 16 kHz model (PyPI `silero-vad`, `silero_vad_16k.safetensors`; tests/gpu/fetch-deps.sh
puts it in .deps/model): an STFT front end, four 1-D convolutions each followed by a ReLU, an LSTM cell and a
ReLU before the classifier. The audio: WAV files of recorded speech (Debian's `alsa-utils` ships nine under
/usr/share/sounds/alsa: a voice naming each speaker, and a noise file). The model runs as Silero runs it, 512
samples a step with 64 samples of context and the LSTM state carried from step to step, here in NumPy float32.

The output is a safetensors file with one F16 tensor per ReLU site (`conv1` ... `conv4`, `decoder`), every
step's activations of every file one after another, and a metadata entry with each tensor's share of exact
zeros. Those zeros are the ReLU's own: nothing is pruned or thresholded.

  python3 bench/relu_activations.py --model .deps/model/silero_vad_16k.safetensors \\
      --out .deps/model/silero-relu-activations.safetensors /usr/share/sounds/alsa/*.wav
"""
import argparse
import json
import os
import sys
import wave

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import safetensors_io as st  # noqa: E402

RATE = 16000
STEP, CONTEXT, PAD = 512, 64, 64  # Silero's 16 kHz step, its context and the STFT's reflect padding
WEIGHTS = ["stft_conv.weight", "final_conv.weight", "lstm_cell.weight_ih", "lstm_cell.bias_ih", "lstm_cell.weight_hh",
           "lstm_cell.bias_hh"] + [f"conv{i}.{part}" for i in range(1, 5) for part in ("weight", "bias")]


def read_wav(path):
    """A WAV file's first channel as float32 in [-1, 1), resampled to 16 kHz."""
    try:
        with wave.open(path) as w:
            width, channels, rate, frames = w.getsampwidth(), w.getnchannels(), w.getframerate(), w.readframes(w.getnframes())
    except (OSError, EOFError, wave.Error) as error:
        raise SystemExit(f"{path}: not a readable WAV file ({str(error) or type(error).__name__})")
    if width != 2:
        raise SystemExit(f"{path}: {8 * width}-bit samples; this reader takes 16-bit PCM")
    x = np.frombuffer(frames, dtype="<i2").reshape(-1, channels)[:, 0].astype(np.float32) / 32768.0
    if rate == RATE:
        return x
    if rate % RATE:
        raise SystemExit(f"{path}: {rate} Hz is not a multiple of 16 kHz")
    factor = rate // RATE  # low-pass below the new Nyquist frequency (windowed sinc), then keep every factor-th sample
    taps = 16 * factor + 1
    n = np.arange(taps) - taps // 2
    kernel = np.sinc(n / factor) / factor * np.hamming(taps)
    return np.convolve(x, kernel.astype(np.float32), mode="same")[::factor].astype(np.float32)


def conv1d(x, weight, bias, stride=1, padding=0):
    """x [C_in, T], weight [C_out, C_in, K] -> [C_out, T_out] (PyTorch's Conv1d, zero padding)."""
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding)))
    k = weight.shape[2]
    windows = np.lib.stride_tricks.sliding_window_view(x, k, axis=1)[:, ::stride, :]  # [C_in, T_out, K]
    y = np.einsum("ctk,ock->ot", windows, weight, optimize=True)
    return y + bias[:, None] if bias is not None else y


class SileroVad:
    def __init__(self, path):
        tensors, _ = st.read(path)
        self.w = {name: st.array(tensor).astype(np.float32) for name, tensor in tensors.items()}
        missing = sorted(set(WEIGHTS) - set(self.w))
        if missing:
            raise SystemExit(f"{path}: not Silero VAD's 16 kHz model (no {', '.join(missing)})")

    def step(self, chunk, state):
        """One 576-sample window (context + step): the post-ReLU activations of each site, and the new state."""
        w = self.w
        x = np.pad(chunk, (0, PAD), mode="reflect")[None, :]
        spectrum = conv1d(x, w["stft_conv.weight"], None, stride=128)
        half = spectrum.shape[0] // 2
        x = np.sqrt(spectrum[:half] ** 2 + spectrum[half:] ** 2)
        sites = {}
        for name, stride in (("conv1", 1), ("conv2", 2), ("conv3", 2), ("conv4", 1)):
            x = np.maximum(conv1d(x, w[f"{name}.weight"], w[f"{name}.bias"], stride=stride, padding=1), 0.0)
            sites[name] = x
        h, c = state
        gates = w["lstm_cell.weight_ih"] @ x[:, 0] + w["lstm_cell.bias_ih"] + w["lstm_cell.weight_hh"] @ h + w["lstm_cell.bias_hh"]
        i, f, g, o = np.split(gates, 4)
        sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        sites["decoder"] = np.maximum(h, 0.0)
        return sites, (h, c)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="silero_vad_16k.safetensors")
    parser.add_argument("--out", required=True)
    parser.add_argument("wavs", nargs="+")
    args = parser.parse_args()

    model = SileroVad(args.model)
    sites = {name: [] for name in ("conv1", "conv2", "conv3", "conv4", "decoder")}
    seconds = 0.0
    for path in args.wavs:
        audio = read_wav(path)
        seconds += len(audio) / RATE
        audio = np.pad(audio, (CONTEXT, (-len(audio)) % STEP))
        state = (np.zeros(128, np.float32), np.zeros(128, np.float32))
        for start in range(CONTEXT, len(audio), STEP):
            activations, state = model.step(audio[start - CONTEXT:start + STEP], state)
            for name, value in activations.items():
                sites[name].append(value.reshape(-1))
    tensors, zeros = {}, {}
    for name, pieces in sites.items():
        values = np.concatenate(pieces).astype(np.float16)
        tensors[name] = values
        zeros[name] = float(np.mean(values.view(np.uint16) == 0))
    everything = np.concatenate(list(tensors.values()))
    zeros["all"] = float(np.mean(everything.view(np.uint16) == 0))
    st.write(args.out, [(name, "F16", [v.size], v.tobytes()) for name, v in tensors.items()], metadata={"source": "silero_vad_16k on " + ", ".join(os.path.basename(p) for p in args.wavs),
                                          "seconds": f"{seconds:.2f}", "zeros": json.dumps(zeros)})
    print(f"{len(args.wavs)} files, {seconds:.1f} s of audio -> {args.out}")
    for name, values in tensors.items():
        print(f"  {name:8s} {values.size:9d} values, {zeros[name]:6.1%} zeros")
    print(f"  {'all':8s} {everything.size:9d} values, {zeros['all']:6.1%} zeros")
    return 0


if __name__ == "__main__":
    sys.exit(main())

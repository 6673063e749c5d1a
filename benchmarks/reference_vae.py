"""The reference: the VAE of pytorch/examples (`vae/main.py`), written the way that example writes it.

    python -m benchmarks.reference_vae --data-root DIR [--epochs 3] [--out DIR]

torchvision's `MNIST` read from the IDX files under DIR (see benchmarks/mnist_files.py), a
`DataLoader` with `ToTensor`, batch 128, the 784-400-20 MLP, Adam 1e-3, Bernoulli cross-entropy
summed over pixels plus the analytic KL; every epoch trains, tests and saves a reconstruction and a
sample grid, as the example does. Unlike the example it runs nothing at import, and at the end it
prints one JSON object: the seconds spent in the training loops and the images trained on.
It deliberately does not import vae_core.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn, optim
from torchvision import datasets, transforms
from torchvision.utils import save_image


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    """Reconstruction + KL divergence losses summed over all elements and batch (Kingma & Welling 2014)."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def train(model, optimizer, loader, device) -> float:
    model.train()
    train_loss = 0.0
    for data, _ in loader:
        data = data.to(device)
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        train_loss += loss.item()
        optimizer.step()
    return train_loss / len(loader.dataset)


def test(model, loader, device, epoch: int, out: str) -> float:
    model.eval()
    test_loss = 0.0
    with torch.no_grad():
        for i, (data, _) in enumerate(loader):
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 8)
                comparison = torch.cat([data[:n], recon_batch.view(-1, 1, 28, 28)[:n]])
                save_image(comparison.cpu(), f"{out}/reconstruction_{epoch}.png", nrow=n)
    return test_loss / len(loader.dataset)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None, help="where the example's pictures go (default: a temp folder)")
    args = p.parse_args()
    torch.manual_seed(1)
    device = torch.device(args.device)
    kwargs = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    train_loader = torch.utils.data.DataLoader(
        datasets.MNIST(args.data_root, train=True, download=False, transform=transforms.ToTensor()),
        batch_size=args.batch_size, shuffle=True, **kwargs)
    test_loader = torch.utils.data.DataLoader(
        datasets.MNIST(args.data_root, train=False, transform=transforms.ToTensor()),
        batch_size=args.batch_size, shuffle=False, **kwargs)
    model = VAE().to(device)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    loop_s, losses = 0.0, []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        for epoch in range(1, args.epochs + 1):
            t0 = time.perf_counter()
            train_loss = train(model, optimizer, train_loader, device)
            loop_s += time.perf_counter() - t0
            test_loss = test(model, test_loader, device, epoch, out)
            losses.append({"epoch": epoch, "train_loss": train_loss, "test_loss": test_loss})
            with torch.no_grad():
                sample = model.decode(torch.randn(64, 20).to(device)).cpu()
                save_image(sample.view(64, 1, 28, 28), f"{out}/sample_{epoch}.png")
    print(json.dumps({"loop_s": loop_s, "images": args.epochs * len(train_loader.dataset),
                      "epochs": losses, "device": str(device)}))


if __name__ == "__main__":
    main()

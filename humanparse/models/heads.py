"""One 1x1 convolution per label domain (the paper's prediction head)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor, nn

from humanparse.errors import ConfigError, unknown_key_message

__all__ = ["DomainHeads"]


class DomainHeads(nn.Module):
    """``forward(F [B, in_dim, h, w], domains=None) -> {domain: logits [B, C_domain, h, w]}``.

    ``domains=None`` runs every head, in the order they were added.
    """

    def __init__(self, in_dim: int, num_classes: Mapping[str, int]):
        super().__init__()
        self.in_dim = in_dim
        self.heads = nn.ModuleDict()
        for domain, n in num_classes.items():
            self.add_head(domain, n)

    def add_head(self, domain: str, num_classes: int) -> None:
        """A new, freshly initialised head (dedicated parsing adds the target domain's head this way)."""
        if not isinstance(domain, str) or not domain or "." in domain:
            raise ConfigError(f"domain name must be a non-empty string without '.', got {domain!r}")
        if domain in self.heads:
            raise ConfigError(f"domain {domain!r} already has a head; heads: {list(self.heads)}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ConfigError(f"num_classes for domain {domain!r} must be a positive int, got {num_classes!r}")
        self.heads[domain] = nn.Conv2d(self.in_dim, num_classes, kernel_size=1)

    @property
    def domains(self) -> list[str]:
        return list(self.heads)

    @property
    def num_classes(self) -> dict[str, int]:
        return {domain: head.out_channels for domain, head in self.heads.items()}

    def resolve(self, domains: str | Sequence[str] | None) -> list[str]:
        """The list of domains to run; ConfigError with close matches for an unknown one."""
        if domains is None:
            return self.domains
        if isinstance(domains, str):
            domains = [domains]
        for domain in domains:
            if domain not in self.heads:
                raise ConfigError(unknown_key_message("domain", domain, self.heads.keys()))
        return list(domains)

    def forward(self, features: Tensor, domains: str | Sequence[str] | None = None) -> dict[str, Tensor]:
        return {domain: self.heads[domain](features) for domain in self.resolve(domains)}

"""Agent identity: the lake's agent registry and the encrypted agent wallet."""

from steme_lake.keys._registry import REGISTRY_FILE, AgentRegistry
from steme_lake.keys._wallet import PASSPHRASE_ENV, WALLET_ENV, Wallet, default_wallet_path

__all__ = [
    "PASSPHRASE_ENV",
    "REGISTRY_FILE",
    "WALLET_ENV",
    "AgentRegistry",
    "Wallet",
    "default_wallet_path",
]

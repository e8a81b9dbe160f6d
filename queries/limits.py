"""Throughput limits a deployment's SKU and capacity imply.

Standard SKUs: capacity is in units of 1,000 tokens per minute; requests per minute are 6 per 1K TPM
for the older chat models (gpt-4o, gpt-4o-mini, embeddings) and 1 per 1K TPM for gpt-4.1 and the
o-series. Provisioned SKUs: capacity is in PTUs, each buying a model-specific input TPM.
"""

from __future__ import annotations

# Input tokens per minute one PTU buys, per model (Azure's provisioned throughput table).
PTU_INPUT_TPM = {"gpt-4o": 2500, "gpt-4o-mini": 37000, "gpt-4.1": 3000, "gpt-4.1-mini": 14900, "o3": 3000}


def is_provisioned(sku: str) -> bool:
    return sku.endswith("ProvisionedManaged")


def is_batch(sku: str) -> bool:
    return sku.endswith("Batch")


def tpm_limit(sku: str, capacity: int, model: str) -> int:
    if is_provisioned(sku):
        return capacity * PTU_INPUT_TPM.get(model, 2500)
    return capacity * 1000


def rpm_limit(sku: str, capacity: int, model: str) -> int:
    per_k = 1 if model.startswith(("gpt-4.1", "o3", "o4")) else 6
    return max(1, tpm_limit(sku, capacity, model) // 1000 * per_k)

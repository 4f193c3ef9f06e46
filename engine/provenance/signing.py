"""Content Credentials (C2PA) for WAV files, through ``c2pa-python`` (the ``provenance`` extra).

A signed manifest says the file is ``trainedAlgorithmicMedia`` (IPTC's digital source type for media made by a
trained model), names Segue as the software agent, carries Segue's record as an ``org.segue.provenance``
assertion, and lists the model and the region (by SHA-256) as ingredients. ``c2pa`` inserts it as a ``C2PA``
chunk and hashes every other byte of the file, so changing any sample or chunk afterwards breaks the signature.

Keys: the studio's own (``key_file`` + ``certificate_file`` in the provenance settings: a PEM private key and its
certificate chain, signer first), or Segue's local key, made on first use in ``<config dir>/c2pa/``: a local CA
and a signing certificate it issued (C2PA refuses self-signed signing certificates). No public trust list holds
that CA, so verifiers (c2patool, contentcredentials.org/verify) show such files as signed by an untrusted issuer;
the signature still proves that the file has not changed since Segue wrote it.
"""

from __future__ import annotations

import datetime
import functools
import io
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from engine import atomic
from engine.errors import BadInputError, EngineError
from engine.provenance.record import IPTC_SOURCE_TYPES, ProvenanceRecord, ProvenanceSettings, config_dir

log = logging.getLogger(__name__)

C2PA_CHUNK_ID = b"C2PA"
ASSERTION_LABEL = "org.segue.provenance"
LOCAL_KEY_FILE = "segue-local-signer.pem"
LOCAL_SIGNER_NAME = "Segue local signer"
UNTRUSTED_NOTE = (
    "signed with Segue's local key: verifiers show it as an untrusted issuer (no public trust list holds it); "
    "set key_file and certificate_file in the provenance settings to sign with your studio's certificate"
)
# validation codes that do not mean the file changed: the issuer is not on a trust list, or OCSP was not asked
_TRUST_CODES = ("signingCredential.untrusted", "signingCredential.ocsp")
_key_lock = threading.Lock()
INSTALL_HINT = "install Segue's provenance extra (pip install 'segue[provenance]') to sign and check C2PA manifests"


@dataclass(frozen=True)
class Credentials:
    """A PEM private key, its certificate chain (signer first), the c2pa algorithm name, and whether it is ours."""

    key_pem: bytes
    chain_pem: bytes
    algorithm: str
    local: bool
    source: str  # the file(s) they came from


@dataclass(frozen=True)
class C2paStatus:
    """What a file's C2PA manifest says and whether its signature holds."""

    present: bool
    checked: bool = False  # False: c2pa-python is missing or could not read it (see problem)
    state: str = ""  # c2pa's validation state: Valid, Trusted or Invalid
    signature_holds: bool = False  # the claim signature and the hash of every byte are intact
    trusted: bool = False  # the issuer is on the verifier's trust list
    issuer: str = ""
    signer: str = ""
    digital_source_type: str = ""
    record: dict[str, Any] | None = None  # the org.segue.provenance assertion
    ingredients: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()  # validation codes that are not about trust
    problem: str = ""
    manifest_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def c2pa_available() -> bool:
    try:
        import c2pa  # noqa: F401
    except ImportError:
        return False
    return True


def load_credentials(settings: ProvenanceSettings) -> Credentials:
    """The studio's key and certificate when configured, else Segue's local one (made on first use)."""
    if settings.key_file:
        key_path, chain_path = Path(settings.key_file).expanduser(), Path(settings.certificate_file).expanduser()
        try:
            key_pem, chain_pem = key_path.read_bytes(), chain_path.read_bytes()
        except OSError as e:
            raise BadInputError(f"cannot read the signing key or certificate ({e}); check key_file and "
                                f"certificate_file in the provenance settings") from e  # fmt: skip
        return Credentials(key_pem, chain_pem, _algorithm(key_pem, str(key_path)), False, f"{key_path}, {chain_path}")
    return local_credentials(config_dir() / "c2pa")


def local_credentials(folder: Path) -> Credentials:
    """Segue's local signer in ``folder``: read it, or make it (once, even with several processes)."""
    path = folder / LOCAL_KEY_FILE
    with _key_lock:
        if not path.is_file():
            _make_local_signer(path)
        return _read_local(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_local(path_name: str, mtime_ns: int) -> Credentials:
    text = Path(path_name).read_bytes()
    marker = b"-----BEGIN CERTIFICATE-----"
    split = text.find(marker)
    if split < 0:
        raise EngineError(f"{path_name} holds no certificate; delete it and Segue makes a new local key")
    key_pem, chain_pem = text[:split], text[split:]
    return Credentials(key_pem, chain_pem, _algorithm(key_pem, path_name), True, path_name)


def _algorithm(key_pem: bytes, where: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise BadInputError(f"{where} is not an unencrypted PEM private key ({e})") from e
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = {256: "es256", 384: "es384", 521: "es512"}.get(key.curve.key_size)
        if algorithm:
            return algorithm
    raise BadInputError(f"{where}: C2PA signs with EC P-256/384/521, Ed25519 or RSA keys; this one is none of them")


def _make_local_signer(path: Path) -> None:
    """A local CA and an end-entity signing certificate it issued (10 years), one PEM file readable by its owner."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, common),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Segue (this computer)"),
        ])  # fmt: skip

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "encipher_only",
         "decipher_only"), False)  # fmt: skip
    ca = (
        x509.CertificateBuilder().subject_name(name("Segue local CA")).issuer_name(name("Segue local CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True, **usage), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(name(LOCAL_SIGNER_NAME)).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, **usage), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    pem += leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)

    def fill(tmp: Path) -> None:  # readable by its owner only, from the first byte
        with open(tmp, "xb", opener=lambda name, flags: os.open(name, flags, 0o600)) as f:
            f.write(pem)

    try:
        atomic.write_with(path, fill, overwrite=False)
    except EngineError:
        if not path.is_file():  # another process made it first: use theirs
            raise
        return
    log.warning("made Segue's local C2PA signing key in %s; %s", path, UNTRUSTED_NOTE)


def manifest_for(record: ProvenanceRecord, title: str) -> dict[str, Any]:
    agent = {"name": "Segue", "version": record.segue_version or "unknown"}
    return {
        "claim_generator_info": [agent],
        "title": title,
        "format": "audio/wav",
        "assertions": [
            {
                "label": "c2pa.actions.v2",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": IPTC_SOURCE_TYPES + record.digital_source_type,
                            "softwareAgent": agent,
                            "description": record.short,
                        }
                    ]
                },
            },
            {"label": ASSERTION_LABEL, "data": record.to_json()},
        ],
    }


def sign_wav(data: bytes, record: ProvenanceRecord, credentials: Credentials, title: str) -> bytes:
    """``data`` (a WAV) with a signed C2PA manifest for ``record``; :class:`EngineError` if signing fails."""
    out = io.BytesIO()
    sign_wav_stream(io.BytesIO(data), out, record, credentials, title)
    return out.getvalue()


def sign_wav_stream(
    source: BinaryIO, dest: BinaryIO, record: ProvenanceRecord, credentials: Credentials, title: str
) -> None:
    """Write ``source`` (a WAV) with a signed C2PA manifest for ``record`` to ``dest`` (readable and seekable too:
    the SDK hashes what it wrote); :class:`EngineError` if signing fails."""
    try:
        import c2pa
    except ImportError as e:
        raise EngineError(f"cannot sign {title}: {INSTALL_HINT}") from e
    try:
        info = c2pa.C2paSignerInfo(credentials.algorithm.encode(), credentials.chain_pem, credentials.key_pem, None)
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(manifest_for(record, title)) as builder:
            model = {
                "title": record.model,
                "format": "application/octet-stream",
                "relationship": "inputTo",
                "data_types": [{"type": "c2pa.types.model"}],
                "description": f"{record.model_version or 'version unknown'}; licence: {record.licence}",
            }
            builder.add_ingredient(json.dumps(model), "application/octet-stream", io.BytesIO(b""))
            for index, digest in enumerate(record.region_sha256):
                region_title = record.region_name or "region"
                if len(record.region_sha256) > 1:
                    region_title += f" ({index + 1})"
                region = {"title": region_title, "format": "application/octet-stream", "relationship": "inputTo",
                          "description": f"sha256:{digest}"}  # fmt: skip
                builder.add_ingredient(json.dumps(region), "application/octet-stream", io.BytesIO(b""))
            builder.sign(signer, "audio/wav", source, dest)
    except c2pa.C2paError as e:
        raise EngineError(f"C2PA signing of {title} failed: {e}") from e


def check_wav(data: bytes, has_chunk: bool) -> C2paStatus:
    """Read and validate the C2PA manifest of a WAV held in memory."""
    if not has_chunk:
        return C2paStatus(present=False)
    try:
        import c2pa
    except ImportError:
        return C2paStatus(present=True, problem=f"cannot check the signature: {INSTALL_HINT}")
    try:
        with c2pa.Reader("audio/wav", io.BytesIO(data)) as reader:
            state = reader.get_validation_state() or ""
            results = reader.get_validation_results() or {}
            store = json.loads(reader.json())
    except c2pa.C2paError as e:
        return C2paStatus(present=True, checked=True, state="Invalid", problem=f"the manifest cannot be read: {e}")
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    failures = tuple(
        str(f.get("code", ""))
        for f in results.get("activeManifest", {}).get("failure", [])
        if not str(f.get("code", "")).startswith(_TRUST_CODES)
    )
    info = active.get("signature_info") or {}
    source_type, record = "", None
    for assertion in active.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            for action in assertion.get("data", {}).get("actions", []):
                source_type = source_type or str(action.get("digitalSourceType", ""))
        elif assertion.get("label") == ASSERTION_LABEL:
            record = assertion.get("data")
    return C2paStatus(
        present=True,
        checked=True,
        state=state,
        signature_holds=state in ("Valid", "Trusted") and not failures,
        trusted=state == "Trusted",
        issuer=str(info.get("issuer", "")),
        signer=str(info.get("common_name", "")),
        digital_source_type=source_type.rsplit("/", 1)[-1],
        record=record if isinstance(record, dict) else None,
        ingredients=tuple(
            f"{i.get('title', '?')}: {i.get('description', i.get('relationship', ''))}"
            for i in active.get("ingredients", [])
        ),
        failures=failures,
    )

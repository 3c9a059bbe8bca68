import { createRequire as __trellisCreateRequire } from 'node:module';
const require = __trellisCreateRequire(import.meta.url);

// packages/ci/src/mint-worker.ts
import path2 from "node:path";
import { performance } from "node:perf_hooks";
import { parentPort, threadId } from "node:worker_threads";

// packages/core/src/x509/leaf-template.ts
import { createECDH, createHash, createPrivateKey, createPublicKey, sign } from "node:crypto";
var LEAF_SECRET_BYTES = { "ecdsa-p256": 40, "ecdsa-p384": 56, ed25519: 32 };
function derLength(n) {
  if (n < 128) return Buffer.from([n]);
  const bytes = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 255);
  return Buffer.from([128 | bytes.length, ...bytes]);
}
function tlv(tag, ...content) {
  const body = content.length === 1 ? content[0] : Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}
var hex = (h) => Buffer.from(h, "hex");
var SEQUENCE = 48;
function derIntegerHex(h) {
  let b = Buffer.from(h.length % 2 ? `0${h}` : h, "hex");
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && b[i + 1] < 128) i++;
  b = b.subarray(i);
  if (b.length === 0) b = Buffer.from([0]);
  return tlv(2, b[0] & 128 ? Buffer.concat([Buffer.from([0]), b]) : b);
}
function derTime(d) {
  const s = d.toISOString().replace(/[-:T]/g, "").slice(0, 14);
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(23, Buffer.from(`${s.slice(2)}Z`, "latin1")) : tlv(24, Buffer.from(`${s}Z`, "latin1"));
}
var SIGNATURE_ALGORITHM = {
  "ecdsa-p256": hex("300a06082a8648ce3d040302"),
  // ecdsa-with-SHA256
  "ecdsa-p384": hex("300a06082a8648ce3d040303"),
  // ecdsa-with-SHA384
  ed25519: hex("300506032b6570")
};
var DIGEST = { "ecdsa-p256": "sha256", "ecdsa-p384": "sha384", ed25519: null };
var EC_PUBLIC_KEY = hex("06072a8648ce3d0201");
var CURVES = {
  "ecdsa-p256": {
    name: "prime256v1",
    oid: hex("06082a8648ce3d030107"),
    bytes: 32,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n
  },
  "ecdsa-p384": {
    name: "secp384r1",
    oid: hex("06052b81040022"),
    bytes: 48,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n
  }
};
var VERSION_V3 = hex("a003020102");
var ZERO = Buffer.from([0]);
var INTEGER_0 = hex("020100");
var INTEGER_1 = hex("020101");
var ECDH_BY_CURVE = {};
var ALG_ID = {};
var OID_COMMON_NAME = hex("0603550403");
var OID_SKI = hex("0603551d0e");
var OID_SAN = hex("0603551d11");
function leafKeyPair(algorithm, secret) {
  if (secret.length !== LEAF_SECRET_BYTES[algorithm])
    throw new Error(`a ${algorithm} leaf key takes ${LEAF_SECRET_BYTES[algorithm]} secret bytes, got ${secret.length}`);
  if (algorithm === "ed25519") {
    const pkcs8 = Buffer.concat([hex("302e020100300506032b657004220420"), secret]);
    const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" })).export({
      format: "der",
      type: "spki"
    });
    return { pkcs8, spki, point: spki.subarray(spki.length - 32) };
  }
  const c = CURVES[algorithm];
  const d = BigInt(`0x${Buffer.from(secret).toString("hex")}`) % (c.n - 1n) + 1n;
  const scalar = Buffer.from(d.toString(16).padStart(c.bytes * 2, "0"), "hex");
  const ecdh = ECDH_BY_CURVE[c.name] ??= createECDH(c.name);
  ecdh.setPrivateKey(scalar);
  const point = ecdh.getPublicKey();
  const algId = ALG_ID[algorithm] ??= tlv(SEQUENCE, EC_PUBLIC_KEY, c.oid);
  const bits = tlv(3, ZERO, point);
  const ecPrivateKey = tlv(SEQUENCE, INTEGER_1, tlv(4, scalar), tlv(161, bits));
  return { pkcs8: tlv(SEQUENCE, INTEGER_0, algId, tlv(4, ecPrivateKey)), spki: tlv(SEQUENCE, algId, bits), point };
}
var PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
function commonNameDer(name) {
  const value = PRINTABLE.test(name) ? tlv(19, Buffer.from(name, "latin1")) : tlv(12, Buffer.from(name, "utf8"));
  return tlv(SEQUENCE, tlv(49, tlv(SEQUENCE, OID_COMMON_NAME, value)));
}
function extension(oid, value) {
  return tlv(SEQUENCE, oid, tlv(4, value));
}
function subjectAltNameDer(uris, dns) {
  return extension(
    OID_SAN,
    tlv(
      SEQUENCE,
      ...uris.map((u) => tlv(134, Buffer.from(u, "latin1"))),
      ...dns.map((n) => tlv(130, Buffer.from(n, "latin1")))
    )
  );
}
var validities = /* @__PURE__ */ new Map();
function validityDer(notBefore, notAfter) {
  const k = `${notBefore.getTime()}/${notAfter.getTime()}`;
  let v = validities.get(k);
  if (!v) {
    if (validities.size > 64) validities.clear();
    v = tlv(SEQUENCE, derTime(notBefore), derTime(notAfter));
    validities.set(k, v);
  }
  return v;
}
function leafTbs(t, o, key) {
  const exts = t.extensions.map((e) => {
    if (e === "subjectKeyIdentifier")
      return extension(OID_SKI, tlv(4, createHash("sha1").update(key.point).digest()));
    if (e === "subjectAltName") return subjectAltNameDer(o.uris, o.dns);
    return e;
  });
  return tlv(
    SEQUENCE,
    VERSION_V3,
    derIntegerHex(o.serial),
    SIGNATURE_ALGORITHM[t.signing],
    t.issuerName,
    validityDer(o.notBefore, o.notAfter),
    commonNameDer(o.dns[0]),
    key.spki,
    tlv(163, tlv(SEQUENCE, ...exts))
  );
}
function pem(label, der) {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.length).toString("base64");
  let out = `-----BEGIN ${label}-----
`;
  for (let i = 0; i < b64.length; i += 64) out += `${b64.slice(i, i + 64)}
`;
  return `${out}-----END ${label}-----
`;
}
function signLeaves(t, orders, signingKey) {
  return orders.map((o) => {
    const key = leafKeyPair(t.algorithm, o.secret);
    const tbs = leafTbs(t, o, key);
    const signature = sign(DIGEST[t.signing], tbs, signingKey);
    const der = tlv(SEQUENCE, tbs, SIGNATURE_ALGORITHM[t.signing], tlv(3, ZERO, signature));
    return {
      service: o.service,
      der,
      certPem: pem("CERTIFICATE", der),
      keyPem: pem("PRIVATE KEY", key.pkcs8),
      fingerprint: `sha256:${createHash("sha256").update(der).digest("hex")}`
    };
  });
}

// packages/ci/src/leaf-files.ts
import fs from "node:fs";
import path from "node:path";
var EXCLUSIVE = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
var REUSE = fs.constants.O_WRONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
var counter = 0;
var tempName = (file, ext) => path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}-${threadTag}-${counter++}.${ext}`);
var code = (e) => e.code;
function replaceFileNow(file, content, mode = 420) {
  const tmp = tempName(file, "tmp");
  const fd = fs.openSync(tmp, EXCLUSIVE, mode);
  fill(fd, tmp, file, content, mode, false);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
function fill(fd, at, file, content, mode, reused) {
  try {
    fs.fchmodSync(fd, mode);
    fs.writeFileSync(fd, content);
    if (reused) fs.ftruncateSync(fd, Buffer.byteLength(content));
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(at, { force: true });
    e.path ??= file;
    throw e;
  }
  fs.closeSync(fd);
}
var spareOf = (file) => path.join(path.dirname(file), `.${path.basename(file)}.spare`);
function openSpare(spare, mode) {
  try {
    const fd = fs.openSync(spare, REUSE);
    const st = fs.fstatSync(fd);
    if (st.isFile() && st.nlink === 1 && (!process.getuid || st.uid === process.getuid())) return { fd, reused: true };
    fs.closeSync(fd);
    return void 0;
  } catch (e) {
    if (code(e) !== "ENOENT") return void 0;
  }
  try {
    return { fd: fs.openSync(spare, EXCLUSIVE, mode), reused: false };
  } catch (e) {
    if (code(e) === "EEXIST") return void 0;
    throw e;
  }
}
function replaceRecycling(file, content, mode, scrub) {
  const spare = spareOf(file);
  const opened = openSpare(spare, mode);
  if (opened === void 0) {
    replaceFileNow(file, content, mode);
    return;
  }
  fill(opened.fd, spare, file, content, mode, opened.reused);
  const old = tempName(file, "old");
  fs.rmSync(old, { force: true });
  let kept = true;
  try {
    fs.linkSync(file, old);
  } catch (e) {
    if (code(e) !== "ENOENT") {
      fs.rmSync(spare, { force: true });
      e.path ??= file;
      throw e;
    }
    kept = false;
  }
  try {
    fs.renameSync(spare, file);
  } catch (e) {
    fs.rmSync(spare, { force: true });
    if (kept) fs.rmSync(old, { force: true });
    throw e;
  }
  if (!kept) return;
  fs.renameSync(old, spare);
  if (scrub) zero(spare);
}
function zero(file) {
  const fd = fs.openSync(file, REUSE);
  try {
    const st = fs.fstatSync(fd);
    if (st.nlink !== 1) fs.rmSync(file, { force: true });
    else if (st.size) fs.writeSync(fd, Buffer.alloc(st.size), 0, st.size, 0);
  } finally {
    fs.closeSync(fd);
  }
}
var threadTag = 0;
function setThreadTag(n) {
  threadTag = n;
}
function makeKeyDir(dir) {
  try {
    fs.mkdirSync(dir, { mode: 448 });
  } catch (e) {
    if (code(e) !== "EEXIST") throw e;
    return false;
  }
  fs.chmodSync(dir, 448);
  return true;
}
function writeLeafDir(scopeDir, l, intermediatePem) {
  const dir = path.join(scopeDir, l.service);
  const fresh = makeKeyDir(dir);
  const put = fresh ? (f, c, mode) => replaceFileNow(f, c, mode) : replaceRecycling;
  if (l.keyPem !== void 0) put(path.join(dir, "key.pem"), l.keyPem, 384, true);
  else for (const f of [path.join(dir, "key.pem"), spareOf(path.join(dir, "key.pem"))]) fs.rmSync(f, { force: true });
  put(path.join(dir, "cert.pem"), l.certPem, 420, false);
  put(path.join(dir, "chain.pem"), l.certPem + intermediatePem, 420, false);
}

// packages/ci/src/mint-worker.ts
setThreadTag(threadId);
parentPort.on("message", (m) => {
  try {
    const t0 = performance.now();
    const leaves = signLeaves(m.template, m.orders, m.key);
    const t1 = performance.now();
    if (m.out) {
      const scopeDir = path2.join(m.out.dir, m.out.scope);
      makeKeyDir(scopeDir);
      for (const l of leaves) writeLeafDir(scopeDir, l, m.out.intermediatePem);
    }
    parentPort.postMessage({
      id: m.id,
      leaves: leaves.map((l) => ({ ...l, der: new Uint8Array(0) })),
      signMs: t1 - t0,
      filesMs: performance.now() - t1
    });
  } catch (e) {
    const err = e;
    parentPort.postMessage({ id: m.id, error: { message: err.message, code: err.code, path: err.path } });
  }
});

import http from 'node:http';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for huggingface.co on 127.0.0.1 that serves model folders with the hub's real routes and headers:
 *   GET  /api/models/{repo}/revision/{rev}?blobs=true   → {id, sha, siblings: [{rfilename, blobId, size, lfs?}]}
 *   GET  /api/models/{repo}/tree/{rev}?recursive=true   → [{type, oid, size, path, lfs?}] (huggingface_hub's listing)
 *   GET|HEAD /{repo}/resolve/{rev}/{file}                → non-LFS: 200, ETag = git blob sha1
 *                                                          LFS: 302 to /cdn/{sha256}, X-Linked-Etag / X-Linked-Size
 * with X-Repo-Commit, X-Error-Code (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo), Range requests,
 * Bearer-token gating, and faults to inject (a body cut half-way once, corrupted bytes).
 */

export interface FakeRepo {
  id: string;
  dir: string;
  /** 40-hex commit of `main`; default derived from the id. */
  commit?: string;
  /** Other branch or tag names → commit (all serve the same files). */
  refs?: Record<string, string>;
  /** When set, requests must carry `Authorization: Bearer <token>` (401 without, 403 with another). */
  token?: string;
  /** With `token`: a gated repo, whose listing is public and whose files need the token (as on huggingface.co). */
  gated?: boolean;
}

export interface FakeHubFaults {
  /** Repo paths whose first GET body is cut after half its bytes (socket destroyed). */
  cutOnce?: string[];
  /** Repo paths whose first GET body stops after half its bytes with the connection left open. */
  stallOnce?: string[];
  /** Listing requests wait this long before answering. */
  listingDelayMs?: number;
  /** Repo paths served with one byte flipped, under the headers of the true content. */
  corrupt?: string[];
  /** The listing ignores `blobs=true` (no sizes or etags), as some mirrors do: the client must HEAD each file. */
  plainListing?: boolean;
  /** Unknown repos answer 401 RepoNotFound, as huggingface.co does for anonymous requests. */
  hideUnknownRepos?: boolean;
  /** Range headers are ignored: every GET answers 200 with the whole file. */
  ignoreRange?: boolean;
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

interface ServedFile {
  path: string;
  abs: string;
  size: number;
  gitSha1: string;
  sha256: string;
  lfs: boolean;
}

interface ServedRepo extends FakeRepo {
  commit: string;
  files: Map<string, ServedFile>;
}

// huggingface repos' default .gitattributes sends these through LFS
const LFS_EXT = /\.(safetensors|bin|pt|pth|ckpt|onnx|h5|msgpack|model|gguf|png|jpg)$/;

function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? walk(path.join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`],
  );
}

function describe(dir: string, rel: string): ServedFile {
  const abs = path.join(dir, ...rel.split('/'));
  const bytes = readFileSync(abs);
  return {
    path: rel,
    abs,
    size: bytes.length,
    gitSha1: createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex'),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    lfs: LFS_EXT.test(rel),
  };
}

export const fakeCommit = (seed: string) => createHash('sha1').update(seed).digest('hex');

export class FakeHub {
  readonly requests: RecordedRequest[] = [];
  readonly repos = new Map<string, ServedRepo>();
  private cutDone = new Set<string>();
  private currentFaults: FakeHubFaults = {};
  /** Setting faults re-arms the one-shot ones. */
  get faults(): FakeHubFaults {
    return this.currentFaults;
  }
  set faults(f: FakeHubFaults) {
    this.currentFaults = f;
    this.cutDone.clear();
  }
  private server: http.Server;
  url = '';

  constructor(repos: FakeRepo[]) {
    for (const r of repos) this.addRepo(r);
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  addRepo(repo: FakeRepo): ServedRepo {
    const files = new Map(walk(repo.dir).map((rel) => [rel, describe(repo.dir, rel)]));
    const served = { ...repo, commit: repo.commit ?? fakeCommit(repo.id), files };
    this.repos.set(repo.id, served);
    return served;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Requests whose path starts with `prefix` (e.g. '/org/name/resolve/'). */
  requestsTo(prefix: string): RecordedRequest[] {
    return this.requests.filter((r) => r.url.startsWith(prefix));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests.push({ method: req.method ?? 'GET', url: req.url ?? '', headers: req.headers });
    const url = new URL(req.url ?? '/', this.url);
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);

    if (parts[0] === 'cdn' && parts.length === 4) return this.serveCdn(req, res, parts[1]!, parts[2]!, parts[3]!);
    if (parts[0] === 'api' && parts[1] === 'models' && parts[4] === 'tree') {
      return this.serveTree(req, res, `${parts[2]}/${parts[3]}`, parts[5] ?? 'main');
    }
    if (parts[0] === 'api' && parts[1] === 'models' && parts[4] === 'revision') {
      return this.serveListing(req, res, `${parts[2]}/${parts[3]}`, parts.slice(5).join('/'));
    }
    if (parts[2] === 'resolve' && parts.length >= 5) {
      return this.serveResolve(req, res, `${parts[0]}/${parts[1]}`, parts[3]!, parts.slice(4).join('/'));
    }
    this.fail(res, 404, 'NotFound', 'no such route');
  }

  private fail(res: http.ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
    res.writeHead(status, { 'Content-Type': 'application/json', 'X-Error-Code': code, 'X-Error-Message': message, ...extra });
    res.end(JSON.stringify({ error: message }));
  }

  /** The repo and commit a request may see, or undefined after answering with the hub's error. */
  private access(req: http.IncomingMessage, res: http.ServerResponse, repoId: string, rev: string, listing = false): { repo: ServedRepo; commit: string } | undefined {
    const repo = this.repos.get(repoId);
    if (!repo && this.faults.hideUnknownRepos) return this.fail(res, 401, 'RepoNotFound', 'Invalid username or password.'), undefined;
    if (!repo) return this.fail(res, 404, 'RepoNotFound', `Repository Not Found for url: ${req.url}.`), undefined;
    if (repo.token !== undefined && !(repo.gated && listing)) {
      const auth = req.headers.authorization;
      if (!auth) return this.fail(res, 401, 'GatedRepo', `Access to model ${repoId} is restricted. You must have access to it and be authenticated.`), undefined;
      if (auth !== `Bearer ${repo.token}`) return this.fail(res, 403, 'GatedRepo', `Access to model ${repoId} is restricted and you are not in the authorized list.`), undefined;
    }
    const commits = [repo.commit, ...Object.values(repo.refs ?? {})];
    const commit = rev === 'main' ? repo.commit : (repo.refs?.[rev] ?? (commits.includes(rev) ? rev : undefined));
    if (!commit) return this.fail(res, 404, 'RevisionNotFound', `Invalid rev id: ${rev}`), undefined;
    return { repo, commit };
  }

  private serveListing(req: http.IncomingMessage, res: http.ServerResponse, repoId: string, rev: string): void {
    if (this.faults.listingDelayMs) {
      const delay = this.faults.listingDelayMs;
      this.currentFaults = { ...this.currentFaults, listingDelayMs: undefined };
      return void setTimeout(() => this.serveListing(req, res, repoId, rev), delay).unref();
    }
    const found = this.access(req, res, repoId, rev, true);
    if (!found) return;
    const blobs = new URL(req.url ?? '/', this.url).searchParams.get('blobs') === 'true' && !this.faults.plainListing;
    const siblings = [...found.repo.files.values()].map((f) =>
      blobs
        ? { rfilename: f.path, blobId: f.gitSha1, size: f.size, ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.size, pointerSize: 134 } } : {}) }
        : { rfilename: f.path },
    );
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ id: repoId, modelId: repoId, sha: found.commit, private: false, siblings }));
  }

  // what huggingface_hub's snapshot_download lists: GET /api/models/{repo}/tree/{rev}?recursive=true (files only here)
  private serveTree(req: http.IncomingMessage, res: http.ServerResponse, repoId: string, rev: string): void {
    const found = this.access(req, res, repoId, rev);
    if (!found) return;
    const entries = [...found.repo.files.values()].map((f) => ({
      type: 'file',
      oid: f.gitSha1,
      size: f.size,
      path: f.path,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.size, pointerSize: 134 } } : {}),
    }));
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(entries));
  }

  private serveResolve(req: http.IncomingMessage, res: http.ServerResponse, repoId: string, rev: string, file: string): void {
    const found = this.access(req, res, repoId, rev);
    if (!found) return;
    const f = found.repo.files.get(file);
    if (!f) return this.fail(res, 404, 'EntryNotFound', `Entry not found: ${file}`, { 'X-Repo-Commit': found.commit });
    if (f.lfs) {
      res.writeHead(302, {
        Location: `${this.url}/cdn/${found.commit}/${f.sha256}/${encodeURIComponent(f.path)}`, // absolute, like the real CDN hop
        'X-Repo-Commit': found.commit,
        ETag: `"${f.gitSha1}"`,
        'X-Linked-Etag': `"${f.sha256}"`,
        'X-Linked-Size': String(f.size),
      });
      return void res.end();
    }
    this.serveBytes(req, res, f, { ETag: `"${f.gitSha1}"`, 'X-Repo-Commit': found.commit });
  }

  // The real CDN is another host, which huggingface_hub does not follow on HEAD; here it is the same host, so the
  // response also carries X-Repo-Commit for huggingface_hub clients pointed at this server.
  private serveCdn(req: http.IncomingMessage, res: http.ServerResponse, commit: string, sha256: string, file: string): void {
    for (const repo of this.repos.values()) {
      const f = repo.files.get(file);
      if (f?.sha256 === sha256) return this.serveBytes(req, res, f, { ETag: `"${f.sha256}"`, 'X-Repo-Commit': commit });
    }
    this.fail(res, 404, 'NotFound', 'no such blob');
  }

  private serveBytes(req: http.IncomingMessage, res: http.ServerResponse, f: ServedFile, headers: Record<string, string>): void {
    let bytes = readFileSync(f.abs);
    if (this.faults.corrupt?.includes(f.path)) {
      bytes = Buffer.from(bytes);
      bytes[bytes.length >> 1]! ^= 0xff;
    }
    const range = this.faults.ignoreRange ? null : req.headers.range?.match(/^bytes=(\d+)-$/);
    let status = 200;
    const out: Record<string, string> = { ...headers, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
    if (range) {
      const start = Number(range[1]);
      if (start >= bytes.length) {
        res.writeHead(416, { ...out, 'Content-Range': `bytes */${bytes.length}` });
        return void res.end();
      }
      out['Content-Range'] = `bytes ${start}-${bytes.length - 1}/${bytes.length}`;
      bytes = bytes.subarray(start);
      status = 206;
    }
    out['Content-Length'] = String(bytes.length);
    res.writeHead(status, out);
    if (req.method === 'HEAD') return void res.end();
    if (this.faults.stallOnce?.includes(f.path) && !this.cutDone.has(f.path)) {
      this.cutDone.add(f.path);
      res.write(bytes.subarray(0, bytes.length >> 1));
      return;
    }
    if (this.faults.cutOnce?.includes(f.path) && !this.cutDone.has(f.path)) {
      this.cutDone.add(f.path);
      res.write(bytes.subarray(0, bytes.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(bytes);
  }
}

export async function startFakeHub(repos: FakeRepo[], faults: FakeHubFaults = {}): Promise<FakeHub> {
  const hub = new FakeHub(repos);
  hub.faults = faults;
  return hub.start();
}

/** A fresh temp folder standing for HF_HOME (cache in <home>/hub), and the env pointing tfvlm at `hub`. */
export function hubTestEnv(home: string, hub?: FakeHub, extra: Record<string, string> = {}): Record<string, string> {
  return { HF_HOME: home, HF_HUB_CACHE: path.join(home, 'hub'), ...(hub ? { HF_ENDPOINT: hub.url } : {}), ...extra };
}

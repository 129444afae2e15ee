/**
 * A TileSource over the bioimnb server extension's REST API
 * (`{baseUrl}bioimnb/api/{image,tile,values,histogram}`).  Requests go through
 * ServerConnection, so they carry the user's auth and honour the base URL
 * (`/user/<name>/` under JupyterHub).  `path` is relative to the server root.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import {
  Histogram,
  ImageInfo,
  TileRequest,
  TileSource,
  ValuesRequest,
  ValuesResult,
  abortError
} from './viewer/types';

type Params = Record<string, string | number>;

export class RestTileSource implements TileSource {
  private readonly settings: ServerConnection.ISettings;
  /** Image info per scene, asked for once (the document viewer checks a remembered view against it first). */
  private readonly infos = new Map<number, Promise<ImageInfo>>();

  constructor(
    readonly path: string,
    settings?: ServerConnection.ISettings,
    /** More query parameters of every request (`location`: a configured storage location). */
    private readonly extra: Record<string, string> = {}
  ) {
    this.settings = settings ?? ServerConnection.makeSettings();
  }

  info(scene: number): Promise<ImageInfo> {
    let info = this.infos.get(scene);
    if (!info) {
      info = this.get('image', { scene }).then(response => response.json() as Promise<ImageInfo>);
      this.infos.set(scene, info);
      // A failure is not kept: asking again asks the server again.
      const asked = info;
      asked.catch(() => {
        if (this.infos.get(scene) === asked) {
          this.infos.delete(scene);
        }
      });
    }
    return info;
  }

  async tile(req: TileRequest): Promise<ImageBitmap> {
    const params: Params = {
      scene: req.scene,
      level: req.level,
      t: req.t,
      z: req.z,
      tx: req.tx,
      ty: req.ty,
      ch: req.channels
        .filter(c => c.visible)
        .map(c => `${c.index}:${c.color}:${c.min}:${c.max}`)
        .join(','),
      fmt: 'png'
    };
    if (req.labels.length) {
      params.labels = req.labels.join(',');
    }
    const response = await this.get('tile', params, req.signal);
    const blob = await response.blob();
    if (req.signal?.aborted) {
      throw abortError();
    }
    return createImageBitmap(blob);
  }

  async values(req: ValuesRequest): Promise<ValuesResult> {
    const { signal, ...rest } = req;
    const response = await this.get('values', rest, signal);
    return (await response.json()) as ValuesResult;
  }

  async histogram(scene: number, channel: number): Promise<Histogram> {
    const response = await this.get('histogram', { scene, channel });
    return (await response.json()) as Histogram;
  }

  private async get(endpoint: string, params: Params, signal?: AbortSignal): Promise<Response> {
    const query: Record<string, string> = { path: this.path, ...this.extra };
    for (const [key, value] of Object.entries(params)) {
      query[key] = String(value);
    }
    const url =
      URLExt.join(this.settings.baseUrl, 'bioimnb', 'api', endpoint) +
      URLExt.objectToQueryString(query);
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(url, { method: 'GET', signal }, this.settings);
    } catch (error) {
      if (signal?.aborted) {
        throw abortError();
      }
      throw new Error(`the Jupyter server did not answer (${(error as Error).message ?? error})`);
    }
    if (!response.ok) {
      throw new Error(await errorMessage(response));
    }
    return response;
  }
}

/** The server's own words for a failed request (JSON `message`/`reason`, or text). */
async function errorMessage(response: Response): Promise<string> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    /* body unreadable: fall back to the status */
  }
  try {
    const data = JSON.parse(text) as { error?: string; message?: string; reason?: string };
    text = data.error || data.message || data.reason || '';
  } catch {
    // Tornado's HTML error pages: keep only the visible text of the title.
    const title = /<title>([^<]*)<\/title>/i.exec(text);
    text = title ? title[1] : text.slice(0, 300);
  }
  const status = `${response.status} ${response.statusText}`.trim();
  return text ? `${text} (${status})` : `the server answered ${status}`;
}

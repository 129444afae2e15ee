import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * GET a JSON document from the bioimnb server extension.
 *
 * Requests go through ServerConnection so that they carry the user's auth
 * (token / XSRF cookie) and honour the server's base URL (e.g. /user/<name>/
 * under JupyterHub).
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'bioimnb', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch (error) {
      console.error('bioimnb: not a JSON response body.', response);
    }
  }
  if (!response.ok) {
    throw new ServerConnection.ResponseError(response, data.message || data);
  }
  return data as T;
}

/**
 * The bioimnb front-end plugin.  For now it only checks that the server
 * extension answers; the viewer comes later.
 */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'bioimnb:plugin',
  description: 'Bioimage data management inside JupyterLab.',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    requestAPI<{ version: string }>('version')
      .then(data => {
        console.log('bioimnb', data);
      })
      .catch(reason => {
        console.error(
          'bioimnb: the bioimnb server extension did not answer.',
          reason
        );
      });
  }
};

export default plugin;

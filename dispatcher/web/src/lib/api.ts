// The REST client every page shares: bearer token, JSON in and out, and the service's JSON
// errors (`{"error": code, "detail": text}`) as ApiError.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    super(detail || code);
  }
}

export class Api {
  constructor(private readonly token: string | null) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PATCH', path, body);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, 'network', 'The service cannot be reached.');
    }
    const text = await response.text();
    let json: unknown = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
    }
    if (!response.ok) {
      const err = (json ?? {}) as { error?: string; detail?: string };
      throw new ApiError(response.status, err.error ?? `http_${response.status}`, err.detail ?? response.statusText);
    }
    return json as T;
  }
}

/** Path segment escaping for ids in URLs. */
export const seg = (s: string): string => encodeURIComponent(s);

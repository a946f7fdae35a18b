// An HTTP error the server answers with: status, and the fields of OpenAI's error object
// ({error: {message, type, param, code}}). Bad input is a 4xx naming the field at fault (`param`).
import { TfvlmError } from '../errors.ts';

export type ApiErrorType = 'invalid_request_error' | 'rate_limit_error' | 'unavailable_error' | 'server_error';

export class ApiError extends TfvlmError {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    /** The request field at fault, as a path (`messages[0].content[1].image_url.url`), or null. */
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: ApiErrorType = status === 429 ? 'rate_limit_error' : status === 503 ? 'unavailable_error' : status >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
  }
}

/** A 400 naming the field: `param: message`. */
export function badRequest(param: string | null, message: string, code: string = 'invalid_value'): ApiError {
  return new ApiError(400, param ? `${param}: ${message}` : message, param, code);
}

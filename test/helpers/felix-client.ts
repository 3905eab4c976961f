import request from 'supertest';
import { adminAuth, type TestApp } from './app.js';

/** A private token as `POST /admin/felix/tokens` issues it. */
export interface FelixToken {
  id: string;
  token: string;
  public: boolean;
}

/** Every server message: `{code, name, data}`. */
export interface FelixMessage {
  code: number;
  name: string;
  data: Record<string, unknown>;
}

/** `POST /admin/felix/tokens`, which must answer 201. */
export async function createToken(app: TestApp, body: Record<string, unknown> = {}): Promise<FelixToken> {
  const res = await request(app.http).post('/admin/felix/tokens').set(adminAuth).send(body).expect(201);
  return res.body as FelixToken;
}

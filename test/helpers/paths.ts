import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Copies of ../shared/fixtures and ../shared/images, kept unchanged so a fresh clone tests alone. */
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const IMAGES = fileURLToPath(new URL('../images/', import.meta.url));
export const fixture = (...parts: string[]) => path.join(FIXTURES, ...parts);
export const image = (name: string) => path.join(IMAGES, name);

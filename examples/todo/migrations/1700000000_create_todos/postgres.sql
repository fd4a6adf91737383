-- The example app's table. Keys are UUIDs the app generates; the app writes
-- every NOT NULL column (the client sends NULL, not DEFAULT, for the others).
CREATE TABLE public.todos (
  id uuid PRIMARY KEY,
  title text NOT NULL,
  completed boolean NOT NULL DEFAULT false,
  created_at timestamp with time zone NOT NULL DEFAULT now()
);

/*
 * nodesc - a test shared object that is no milterhost plugin: it exports
 * a function but no milterhost_plugin descriptor.
 */
int nodesc_answer(void);

int
nodesc_answer(void)
{
	return 42;
}

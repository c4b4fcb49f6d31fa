"""When editions go out: the schedule, the monthly rule and the scheduler process."""

package io.github.qwenasredge.text

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Test

class RepetitionGuardTest {
    @Test
    fun rule() {
        val g = RepetitionGuard()
        assertEquals(listOf(80, 40, 27, 20, 16, 14, 12, 10), (1..8).map { g.repeatsNeeded(it) })
        assertEquals(5, g.repeatsNeeded(32))
        assertNull(g.find(IntArray(79) { 5 }))
        val loop = g.find(IntArray(80) { 5 })!!
        assertEquals(Loop(0, 1, 80), loop)
        assertEquals(1, loop.keep)
        val tokens = intArrayOf(9, 8) + IntArray(80) { it % 2 }
        assertEquals(Loop(2, 2, 40), g.find(tokens))
        assertNull(g.find(tokens, newFrom = tokens.size))
        assertEquals(Loop(2, 2, 40), g.find(tokens.toList(), newFrom = tokens.size - 1))
    }

    @Test(expected = IllegalArgumentException::class)
    fun refusesBadSettings() {
        RepetitionGuard(minRepeats = 1)
    }

    @Test
    fun pythonCases() {
        val guards = TextFixtures.cases.list("guards").map {
            val p = (it as List<*>).map { x -> (x as Long).toInt() }
            RepetitionGuard(p[0], p[1], p[2])
        }
        TextFixtures.checkAll("repetition guard", TextFixtures.list("guard")) { c ->
            val tokens = c.list("tokens").toIntArrayStrict()
            val loop = guards[c.int("guard")].find(tokens, c.int("new_from"))
            val want = (c["loop"] as List<*>?)?.map { (it as Long).toInt() }
            val got = loop?.let { listOf(it.start, it.unit, it.repeats) }
            val keep = (c["keep"] as Long?)?.toInt()
            if (got == want && loop?.keep == keep) null
            else "guard ${c["guard"]} tokens ${tokens.toList()} new_from ${c["new_from"]}: got $got, Python $want"
        }
    }
}
